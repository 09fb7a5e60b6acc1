package mirror

// LocalPathModule is the Go module local-path-provisioner is built from.
const LocalPathModule = "github.com/rancher/local-path-provisioner"

// LocalPathPath is where the local-path-provisioner binary is put: upstream ships it only in
// its image (docker.io/rancher/local-path-provisioner), so it lives under BinPath.
func LocalPathPath(version string) string {
	return BinPath("local-path-provisioner", version, "local-path-provisioner")
}

// localPathJob builds the module's main package (its root) static with the release in
// main.VERSION, as upstream's build script does.
func (b *builder) localPathJob(v string) job {
	return b.imageBinaryJob("local-path-provisioner", LocalPathModule, v, LocalPathModule, LocalPathPath(v), "-X main.VERSION="+v)
}
