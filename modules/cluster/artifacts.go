package cluster

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/kubernetes"
)

// Artifacts is what a run installs from, resolved on the machine kk runs on before any
// host is touched: every program per arch, and the images when they come from a bundle.
type Artifacts struct {
	Files binaries.Files
	// Versions maps a component name (catalogue name: containerd, etcd, kubeadm...) to the
	// version found (bundle) or chosen (download).
	Versions map[string]string
	// ImageLayout is an OCI image layout holding the cluster's images ("" when nodes pull
	// from registries); ImageArchive is the same layout as one tar, ready to upload and import.
	ImageLayout  string
	ImageArchive string
	ImageRefs    []string
	// Charts are the app store's chart archives (spec.openpitrix.store.charts): the bundle's,
	// or the Cluster file's charts packaged into <workdir>/cache/charts.
	Charts []charts.Archive
	// Source says where the files came from, for the run's log.
	Source string
}

// ArtifactOptions says where artifacts come from.
type ArtifactOptions struct {
	Workdir string
	// Bundle is an offline bundle (kk artifact export); when set nothing is downloaded.
	Bundle string
	// Resolver says where to download from when there is no bundle (--mirror, KKZONE).
	Resolver catalog.Resolver
	// Manifest pins versions and checksums for downloads (optional).
	Manifest *v1alpha2.Manifest
	Log      io.Writer
	Progress func(download.Progress)
}

// ResolveArtifacts imports the bundle (once: an unchanged bundle is not unpacked again) or
// downloads what the cluster needs into <workdir>/cache, and extracts every program.
func ResolveArtifacts(ctx context.Context, c *config.Cluster, o ArtifactOptions) (*Artifacts, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	a := &Artifacts{Versions: map[string]string{}}
	var cache string
	var arts []catalog.Artifact
	if o.Bundle != "" {
		imp, err := bundle.Import(ctx, o.Bundle, bundle.ImportOptions{Workdir: o.Workdir})
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
		if imp.Skipped {
			fmt.Fprintf(log, "bundle %s already unpacked in %s\n", o.Bundle, imp.Dir)
		} else {
			fmt.Fprintf(log, "bundle %s unpacked into %s\n", o.Bundle, imp.Dir)
		}
		for _, arch := range c.Arches() {
			found := false
			for _, ba := range imp.Index.Arches {
				found = found || ba == arch
			}
			if !found {
				return nil, fmt.Errorf("bundle %s holds arches %s; the cluster has hosts of arch %s", o.Bundle, strings.Join(imp.Index.Arches, ", "), arch)
			}
		}
		cache = imp.Files()
		comps, err := clusterComponents(imp.Index.Components, c.Kubernetes.Version)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
		for _, ce := range comps {
			art, err := (catalog.Resolver{}).Resolve(catalog.Component{Name: ce.Name, Version: ce.Version, Arch: ce.Arch})
			if err != nil {
				return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
			}
			arts = append(arts, art)
		}
		if len(imp.Index.Images) > 0 {
			a.ImageLayout = imp.Images()
			seen := map[string]bool{}
			for _, im := range imp.Index.Images {
				if !seen[im.Ref] {
					seen[im.Ref] = true
					a.ImageRefs = append(a.ImageRefs, im.Ref)
				}
			}
			sort.Strings(a.ImageRefs)
			if missing, err := lackedImages(c, a.ImageRefs); err != nil || len(missing) > 0 {
				if err == nil {
					err = fmt.Errorf("it lacks images the cluster runs: %s; export a bundle of this Cluster file (kk create manifest -c FILE, "+
						"with --with-local-storage when kk create cluster has it; kk artifact export)", strings.Join(missing, ", "))
				}
				return nil, fmt.Errorf("bundle %s: %w", o.Bundle, err)
			}
			a.ImageArchive = filepath.Join(imp.Dir, "images.tar")
			if err := tarLayout(a.ImageLayout, a.ImageArchive); err != nil {
				return nil, fmt.Errorf("bundle %s: images: %w", o.Bundle, err)
			}
		}
		if c.Platform.AppStore {
			a.Charts = imp.Charts()
			if missing := lackedCharts(c, a.Charts); len(missing) > 0 {
				return nil, fmt.Errorf("bundle %s lacks the app store's charts %s (spec.openpitrix.store.charts): export a bundle of this "+
					"Cluster file (kk create manifest -c FILE; kk artifact export)", o.Bundle, strings.Join(missing, "; "))
			}
		}
		a.Source = "bundle " + o.Bundle
	} else {
		m := o.Manifest
		if m == nil {
			var err error
			if m, err = v1alpha2.NewManifest(c); err != nil {
				return nil, err
			}
		}
		comps := m.Components()
		var err error
		if arts, err = o.Resolver.ResolveAll(comps); err != nil {
			return nil, err
		}
		for i := range arts {
			if sum := m.Checksum(comps[i]); sum != "" {
				arts[i].Checksum.Pinned = sum
			}
		}
		cache = filepath.Join(o.Workdir, "cache")
		d := &download.Downloader{Cache: cache, Progress: o.Progress}
		res, err := d.Fetch(ctx, arts)
		if err != nil {
			return nil, err
		}
		var got, reused int64
		for _, r := range res {
			got += r.Bytes
			if r.Reused {
				reused++
			}
		}
		fmt.Fprintf(log, "downloads: %d files (%d reused from the cache), %d bytes received\n", len(res), reused, got)
		a.Source = "downloads into " + cache
		if c.Platform.AppStore {
			if a.Charts, err = packStoreCharts(c, filepath.Join(cache, bundle.ChartsDir)); err != nil {
				return nil, err
			}
		}
	}
	for _, art := range arts {
		members, err := download.Extract(ctx, cache, art)
		if err != nil {
			return nil, err
		}
		comp := art.Component
		a.Versions[comp.Name] = comp.Version
		for _, m := range members {
			a.Files.Add(comp.Arch, InstallName(comp.Name, m), filepath.Join(cache, filepath.FromSlash(m)))
		}
	}
	return a, nil
}

// lackedImages are the images cluster c runs (its manifest's) that are not in have, the
// bundle's, which the nodes import; with a private registry the registry serves them.
func lackedImages(c *config.Cluster, have []string) ([]string, error) {
	if c.Registry.PrivateRegistry != "" {
		return nil, nil
	}
	m, err := v1alpha2.NewManifest(c)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range m.Images() {
		if !slices.Contains(have, im) {
			out = append(out, im)
		}
	}
	return out, nil
}

// packStoreCharts packages the app store's charts of c (spec.openpitrix.store.charts): an
// archive is used as it is, a directory packaged into dir. A chart that is not there or does not
// load is an error at its FILE:LINE, all of them together.
func packStoreCharts(c *config.Cluster, dir string) ([]charts.Archive, error) {
	var out []charts.Archive
	var errs []error
	for _, lc := range c.Platform.StoreCharts {
		a, err := charts.Package(lc.Path, dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: ClusterConfiguration spec.openpitrix.store.charts: %w", lc.Source, err))
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// lackedCharts are the app store's charts of c that the bundle's have lacks, each as "FILE:LINE
// NAME VERSION". A chart the Cluster file names that is not on this machine (the file was
// copied without it, next to its bundle) is taken to be the bundle's; a bundle with no chart
// at all lacks every chart the file names.
func lackedCharts(c *config.Cluster, have []charts.Archive) []string {
	var out []string
	for _, lc := range c.Platform.StoreCharts {
		if len(have) == 0 {
			out = append(out, lc.Source+" "+lc.Path)
			continue
		}
		ch, err := charts.Inspect(lc.Path)
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(have, func(a charts.Archive) bool { return a.Chart == ch }) {
			out = append(out, lc.Source+" "+ch.String())
		}
	}
	return out
}

// clusterComponents keeps the bundle's components a cluster of Kubernetes version v installs: a
// bundle may carry several Kubernetes releases (the steps of an upgrade), of which only v's
// kubeadm, kubelet and kubectl are taken. A bundle without v is an error naming what it has.
func clusterComponents(all []bundle.ComponentEntry, v string) ([]bundle.ComponentEntry, error) {
	var out []bundle.ComponentEntry
	var have []string
	found := false
	for _, ce := range all {
		if slices.Contains(kubernetes.Programs, ce.Name) {
			if !slices.Contains(have, ce.Version) {
				have = append(have, ce.Version)
			}
			if ce.Version != v {
				continue
			}
			found = true
		}
		out = append(out, ce)
	}
	if len(have) > 0 && !found {
		return nil, fmt.Errorf("it holds Kubernetes %s, not %s (kubernetes.version): export a bundle for %s (kk create manifest, kk artifact export)",
			strings.Join(have, ", "), v, v)
	}
	return out, nil
}

// KubernetesVersions lists the Kubernetes releases a bundle's index carries (their kubeadm).
func KubernetesVersions(ix *bundle.Index) []string {
	var out []string
	for _, ce := range ix.Components {
		if ce.Name == "kubeadm" && !slices.Contains(out, ce.Version) {
			out = append(out, ce.Version)
		}
	}
	return out
}

// InstallName is the name a component's file is known by in binaries.Files: its base name,
// "cni/<plugin>" for CNI plugins, "docker/<program>" for docker's static programs, and
// "runc" for runc's release file (runc.amd64).
func InstallName(component, member string) string {
	base := path.Base(member)
	switch component {
	case "cni-plugins":
		return "cni/" + base
	case "docker":
		return "docker/" + base
	case "runc":
		return "runc"
	case catalog.NvidiaDriver:
		return catalog.NvidiaDriver // NVIDIA-Linux-x86_64-VER.run: one name for every arch and version
	case catalog.NvidiaContainerToolkit:
		return catalog.NvidiaContainerToolkit // its base package, nvidia-container-toolkit-base_VER-1_ARCH.deb
	}
	return base
}

// tarLayout writes the OCI layout dir as one tar (what `ctr images import` reads), once: an
// existing archive newer than the layout's index is kept.
func tarLayout(dir, out string) error {
	idx, err := os.Stat(filepath.Join(dir, "index.json"))
	if err != nil {
		return err
	}
	if st, err := os.Stat(out); err == nil && !st.ModTime().Before(idx.ModTime()) && st.Size() > 0 {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".images-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = tmp.Close()
	}
	if err != nil {
		tmp.Close()
		return err
	}
	return os.Rename(tmp.Name(), out)
}
