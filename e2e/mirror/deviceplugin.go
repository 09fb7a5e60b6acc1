package mirror

// NVIDIA's device plugin for Kubernetes (nvcr.io/nvidia/k8s-device-plugin, the DaemonSet of
// kk's GPU hosts).
//
// Upstream publishes no binary, only its image, so the mirror builds cmd/nvidia-device-plugin
// from the module at Spec.NvidiaDevicePlugin and puts it under BinPath, for e2e/images to make
// the image of. The module proxy serves v0.17.4 and it builds in the throwaway module (the
// module's vendor directory is not used; go mod tidy resolves its go.mod's requirements).
//
// Like the container toolkit's programs (nvidia.go) it uses go-nvml, which calls
// libnvidia-ml's functions through symbols left undefined for the dynamic linker to bind
// once it has dlopen'ed the library: it is linked dynamically against the build machine's
// glibc, with the toolkit's external linker flags (upstream's Makefile passes the same two
// -Wl flags without -z,lazy, which is the linker's default; it is said here, as for the
// toolkit, so that no default of the build machine's makes the binding immediate). A static
// link would crash at the first NVML call.

// NvidiaDevicePluginModule is the Go module the device plugin is built from.
const NvidiaDevicePluginModule = "github.com/NVIDIA/k8s-device-plugin"

// NvidiaDevicePluginPath is where the nvidia-device-plugin binary is put: upstream ships it
// only in its image, so it lives under BinPath.
func NvidiaDevicePluginPath(version string) string {
	return BinPath("nvidia-device-plugin", version, "nvidia-device-plugin")
}

// nvidiaDevicePluginJob builds cmd/nvidia-device-plugin as upstream's Makefile does: cgo,
// dynamic, with the release (VERSION, with its "v") in internal/info.version; its gitCommit
// stays empty (the module zip has no commit).
func (b *builder) nvidiaDevicePluginJob(v string) job {
	mod := NvidiaDevicePluginModule
	return b.imageBinaryJobWith("nvidia-device-plugin", mod, v, mod+"/cmd/nvidia-device-plugin", NvidiaDevicePluginPath(v), recipeRev+" cgo-dynamic",
		goBuild{ldflags: []string{"-X " + mod + "/internal/info.version=" + v}, cgoDynamic: true, extldflags: nvidiaExtLDFlags})
}
