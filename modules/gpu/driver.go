package gpu

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// Task names of the driver (spec.gpu.driver), on the hosts whose facts list NVIDIA GPUs.
const (
	TaskDriverPrereqs = "gpu/driver-prereqs"
	TaskNouveau       = "gpu/nouveau"
	TaskDriver        = "gpu/driver"
	TaskPersistenced  = "gpu/persistenced"
)

// Paths on a GPU host.
const (
	NouveauBlacklist = "/etc/modprobe.d/kk-blacklist-nouveau.conf"
	ModulesLoad      = "/etc/modules-load.d/kk-nvidia.conf"
	PersistencedUnit = "/etc/systemd/system/nvidia-persistenced.service"
	PersistencedBin  = "/usr/bin/nvidia-persistenced"
	// InstallerDir holds the driver's installer while it runs (removed afterwards).
	InstallerDir = "/var/lib/kk/gpu"
)

// DriverSpec is the NVIDIA driver kk installs on every GPU host.
type DriverSpec struct {
	// Version is the driver's version ("570.195.03").
	Version string
	// Files holds its installer per arch, as catalog.NvidiaDriver.
	Files binaries.Files
	// GPUHosts tells the GPU hosts.
	GPUHosts Hosts
	// AllowReboot reboots a host that needs it (nouveau, or an older NVIDIA driver, in use;
	// a new driver that only a boot loads) and carries on once it is back (--allow-reboot).
	AllowReboot bool
}

// RebootWithin bounds the wait for a GPU host rebooted by kk to answer again.
const RebootWithin = 10 * time.Minute

// needsReboot is the exit status of NouveauScript and DriverScript when only a reboot lets
// them finish.
const needsReboot = 3

// script runs a driver script as root: its exit status, and an error (what it said) unless
// it exited 0.
func script(ctx context.Context, t *pipeline.Target, sh string) (int, error) {
	res, err := t.Exec(ctx, sh, connector.ExecOptions{Sudo: true})
	if err != nil {
		return -1, err
	}
	return res.ExitCode, res.Err()
}

// rebooting runs step (a script's exit status and error); where it needs a reboot and s
// allows one, the host is rebooted and done is asked, then step run again unless done.
func (s DriverSpec) rebooting(ctx context.Context, t *pipeline.Target, step func() (int, error), done func() (bool, error)) error {
	code, err := step()
	if err == nil || code != needsReboot || !s.AllowReboot {
		return err
	}
	t.Log.Warn("the host must reboot (--allow-reboot)", "why", err.Error())
	if err := t.Reboot(ctx, RebootWithin); err != nil {
		return err
	}
	if ok, err := done(); err != nil || ok {
		return err
	}
	_, err = step()
	return err
}

// HasGPU reports whether t's host has NVIDIA GPUs on its PCI bus (its facts): the GPU tasks
// leave every other host alone.
func HasGPU(t *pipeline.Target) bool {
	return t.Facts().NvidiaGPU()
}

// DriverTasks returns the driver's tasks, in order: the kernel headers and compiler the
// installer builds the modules with (DKMS rebuilds them for each new kernel), nouveau kept
// out, the driver (NVIDIA's .run installer from the bundle, a host whose loaded driver is the
// version already left alone), and the persistence daemon with the modules loaded at boot.
// A host that must reboot (nouveau, or an older NVIDIA driver, in use; a new driver that only
// a boot loads) fails naming why, unless s.AllowReboot: then kk reboots it, waits until it is
// back and carries on. A re-run after a reboot by hand carries on too.
func DriverTasks(s DriverSpec, after []string) ([]pipeline.Task, error) {
	blacklist, persisted, err := driverFiles()
	if err != nil {
		return nil, err
	}
	sel := pipeline.AllHosts()
	onGPU := s.GPUHosts.skipUnlessGPU
	return []pipeline.Task{
		{
			Name: TaskDriverPrereqs, Desc: "kernel headers, gcc, make and dkms the NVIDIA driver builds with (GPU hosts)",
			Hosts: sel, After: after,
			Check: onGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) { return t.Test(ctx, prereqsPresent) }),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				kernel, err := t.Run(ctx, "uname -r")
				if err != nil {
					return false, err
				}
				pm := ""
				if f := t.Facts(); f != nil {
					pm = f.PackageManager
				}
				pkgs, err := prereqPackages(pm, strings.TrimSpace(kernel))
				if err != nil {
					return false, err
				}
				if err := osprep.Install(ctx, t, pkgs); err != nil {
					return true, err
				}
				return true, nil
			},
		},
		{
			Name: TaskNouveau, Desc: "nouveau blacklisted and unloaded (GPU hosts)",
			Hosts: sel, After: []string{TaskDriverPrereqs}, // one initramfs rebuild, after the packages'
			Timeout: RebootWithin + 5*time.Minute,

			Check: onGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
				return t.Test(ctx, connector.FileTest(blacklist)+" && "+nouveauUnloaded)
			}),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				if _, err := t.Upload(ctx, blacklist); err != nil {
					return true, err
				}
				// after a boot nouveau stays out: the blacklist is in the initramfs
				return true, s.rebooting(ctx, t, func() (int, error) { return script(ctx, t, NouveauScript) },
					func() (bool, error) { return t.Test(ctx, nouveauUnloaded) })
			},
		},
		{
			Name: TaskDriver, Desc: "NVIDIA driver " + s.Version + " from NVIDIA's installer in the bundle (GPU hosts)",
			Hosts: sel, After: []string{TaskNouveau}, Timeout: 30 * time.Minute,
			Check: onGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
				return t.Test(ctx, DriverLoaded(s.Version))
			}),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				local, err := s.Files.Path(binaries.HostArch(t), catalog.NvidiaDriver)
				if err != nil {
					return false, err
				}
				installer := InstallerDir + "/NVIDIA-driver-" + s.Version + ".run"
				install := func() (int, error) {
					if _, err := t.Sudo(ctx, "mkdir -p "+InstallerDir); err != nil {
						return -1, err
					}
					if _, err := t.Upload(ctx, connector.File{Path: installer, LocalPath: local, Mode: 0o755}); err != nil {
						return -1, fmt.Errorf("upload the NVIDIA driver installer: %w", err)
					}
					return script(ctx, t, DriverScript(s.Version, installer))
				}
				// a driver installed but only loaded by a boot is done once the host is back
				if err := s.rebooting(ctx, t, install, func() (bool, error) { return t.Test(ctx, DriverLoaded(s.Version)) }); err != nil {
					return true, fmt.Errorf("NVIDIA driver %s (its installer's log: /var/log/nvidia-installer.log): %w", s.Version, err)
				}
				return true, nil
			},
		},
		{
			Name: TaskPersistenced, Desc: "nvidia-persistenced running, the NVIDIA modules loaded at boot (GPU hosts)",
			Hosts: sel, After: []string{TaskDriver},
			Check: onGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
				return t.Test(ctx, connector.FileTest(persisted[0])+" && "+connector.FileTest(persisted[1])+
					" && systemctl is-active --quiet nvidia-persistenced && systemctl is-enabled --quiet nvidia-persistenced")
			}),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				for _, f := range persisted {
					if _, err := t.Upload(ctx, f); err != nil {
						return true, err
					}
				}
				if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl enable nvidia-persistenced && systemctl restart nvidia-persistenced"); err != nil {
					return true, err
				}
				return true, nil
			},
		},
	}, nil
}

// prereqsPresent is a shell test that the running kernel's headers, gcc, make and dkms are
// there.
const prereqsPresent = `[ -e "/lib/modules/$(uname -r)/build" ] && command -v gcc >/dev/null && command -v make >/dev/null && command -v dkms >/dev/null`

// prereqPackages are the packages of prereqsPresent for package manager pm and kernel release
// kernel. (dkms comes from EPEL on the RHEL family.)
func prereqPackages(pm, kernel string) ([]string, error) {
	switch pm {
	case "apt-get":
		return []string{"linux-headers-" + kernel, "gcc", "make", "dkms"}, nil
	case "dnf", "yum":
		return []string{"kernel-devel-" + kernel, "kernel-headers-" + kernel, "gcc", "make", "dkms", "elfutils-libelf-devel"}, nil
	case "zypper":
		return []string{"kernel-default-devel", "gcc", "make", "dkms"}, nil
	}
	return nil, fmt.Errorf("no supported package manager (apt-get, dnf, yum, zypper) to install the kernel headers, gcc, make and dkms the NVIDIA driver needs: install them by hand")
}

// nouveauUnloaded is a shell test that the nouveau module is not loaded.
const nouveauUnloaded = `! grep -q '^nouveau ' /proc/modules`

// NouveauScript applies the blacklist (the initramfs, where nouveau may load from, is
// rebuilt) and unloads nouveau; nouveau in use (a console on it) fails asking for a reboot.
const NouveauScript = `set -e
if command -v update-initramfs >/dev/null; then update-initramfs -u >/dev/null
elif command -v dracut >/dev/null; then dracut -f >/dev/null; fi
if grep -q '^nouveau ' /proc/modules && ! modprobe -r nouveau 2>/dev/null; then
  echo "nouveau is loaded and in use: reboot the host (the blacklist keeps nouveau out from then on), then run kk again, or run it with --allow-reboot" >&2; exit 3
fi`

// DriverLoaded is a shell test that the loaded NVIDIA kernel module is version v.
func DriverLoaded(v string) string {
	return `[ "$(cat /sys/module/nvidia/version 2>/dev/null)" = ` + connector.Quote(v) + ` ]`
}

// DriverScript installs driver version v with NVIDIA's installer at installer: silently,
// with DKMS (the modules rebuilt for each new kernel), over an older driver of NVIDIA's
// installer (unloaded first, kk's exporter and the persistence daemon stopped; one still in
// use asks for a reboot), never over a driver of another
// origin (a distribution's package), which would break both. The installer goes afterwards;
// the new module must load and report v.
func DriverScript(v, installer string) string {
	q, qi := connector.Quote(v), connector.Quote(installer)
	return `set -e
loaded=$(cat /sys/module/nvidia/version 2>/dev/null || true)
if [ -n "$loaded" ] && ! command -v nvidia-uninstall >/dev/null; then
  echo "NVIDIA driver $loaded is loaded and was not installed by NVIDIA's installer (a distribution's package?): remove it, then run kk again" >&2; exit 2
fi
# kk's own holders of the GPUs let go (the workers phase starts the exporter again)
[ -z "$loaded" ] || systemctl stop nvidia-persistenced ` + ExporterUnit + ` 2>/dev/null || true
if [ -n "$loaded" ] && ! modprobe -r nvidia_uvm nvidia_drm nvidia_modeset nvidia 2>/dev/null; then
  echo "NVIDIA driver $loaded is in use: stop what uses the GPUs (or reboot the host), then run kk again, or run it with --allow-reboot" >&2; exit 3
fi
sh ` + qi + ` --silent --dkms
rm -f ` + qi + `
modprobe nvidia
now=$(cat /sys/module/nvidia/version)
[ "$now" = ` + q + ` ] || { echo "the loaded NVIDIA driver is $now after installing "` + q + `": reboot the host, then run kk again, or run it with --allow-reboot" >&2; exit 3; }`
}

// driverFiles are the files the driver's tasks write on a GPU host, rendered once: the nouveau
// blacklist, then the persistence daemon's unit and the modules-load file.
func driverFiles() (blacklist connector.File, persisted []connector.File, err error) {
	b, err := templates.Render("gpu/blacklist-nouveau.conf", nil)
	if err != nil {
		return blacklist, nil, err
	}
	unit, err := templates.Render("gpu/nvidia-persistenced.service", struct{ Bin string }{PersistencedBin})
	if err != nil {
		return blacklist, nil, err
	}
	mods, err := templates.Render("gpu/modules-load.conf", nil)
	if err != nil {
		return blacklist, nil, err
	}
	return connector.File{Path: NouveauBlacklist, Data: b, Mode: 0o644},
		[]connector.File{{Path: PersistencedUnit, Data: unit, Mode: 0o644}, {Path: ModulesLoad, Data: mods, Mode: 0o644}}, nil
}
