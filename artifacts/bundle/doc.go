// Package bundle builds, checks and unpacks kk's offline bundles (KubeKey calls them
// artifacts): one tar.gz holding what a Manifest lists, so that a cluster can be installed
// with no network.
//
// A bundle's members, in this order:
//
//	kk-bundle.json            the index (Index): kk version, arches, created time, components,
//	                          images, and the path, SHA-256 and size of every other member
//	SHA256SUMS                the same checksums in sha256sum(1) format (sha256sum -c works
//	                          in an unpacked bundle)
//	manifest.yaml             the Manifest the bundle was exported from
//	files/<name>/<version>/<arch>/<file>
//	                          component downloads, laid out as kk's download cache, each with
//	                          its <file>.sha256 record: an unpacked files/ directory is a cache
//	                          the downloader reuses with no network
//	charts/<name>-<version>.tgz
//	                          the app store's Helm charts (the Manifest's spec.charts), each an
//	                          archive as helm package makes it
//	images/oci-layout, images/index.json, images/blobs/sha256/<hex>
//	                          one OCI image layout holding every image, one entry per image
//	                          and arch, annotated with org.opencontainers.image.ref.name (and
//	                          io.containerd.image.name) = the full upstream reference
//
// Export downloads through the workdir's cache (<workdir>/cache for components,
// <workdir>/cache/images for image blobs), so a second export downloads nothing it already
// has; it writes the bundle to a temporary file beside the output and renames it into place,
// so a failed export leaves no bundle behind. Verify checks every member against the index
// in one streaming pass; Import unpacks a verified bundle into <workdir>/artifact/<sha256 of
// the bundle>/ once, and skips the work when that directory is already complete.
package bundle
