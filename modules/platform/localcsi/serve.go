package localcsi

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	registration "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// SocketPath turns a CSI endpoint (unix:///csi/csi.sock, unix://tmp/csi.sock as upstream's
// default writes it, or a plain path) into the socket's path.
func SocketPath(endpoint string) (string, error) {
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		if strings.Contains(endpoint, "://") {
			return "", fmt.Errorf("endpoint %q: only unix sockets are served", endpoint)
		}
		p = endpoint
	}
	if p == "" {
		return "", fmt.Errorf("endpoint %q names no socket", endpoint)
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p, nil
}

// listen removes a stale socket at p (a restarted container finds its predecessor's) and
// listens there.
func listen(p string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return net.Listen("unix", p)
}

// logCalls logs every call with its error, as upstream's drivers do at -v=5: the sidecars'
// retries then read plainly in the pod's log.
func logCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		log.Printf("%s: %v", info.FullMethod, err)
	} else if !strings.HasSuffix(info.FullMethod, "/Probe") && !strings.HasSuffix(info.FullMethod, "/NodeGetVolumeStats") {
		log.Printf("%s: ok", info.FullMethod)
	}
	return resp, err
}

// Serve serves d's identity, controller and node services on the unix socket of endpoint until
// ctx ends.
func Serve(ctx context.Context, d *Driver, endpoint string) error {
	p, err := SocketPath(endpoint)
	if err != nil {
		return err
	}
	l, err := listen(p)
	if err != nil {
		return err
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(logCalls))
	csi.RegisterIdentityServer(s, d)
	csi.RegisterControllerServer(s, d)
	csi.RegisterNodeServer(s, d)
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	log.Printf("serving CSI driver %s %s of node %s on %s (state %s)", d.cfg.Name, d.cfg.Version, d.cfg.NodeID, p, d.cfg.StateDir)
	return s.Serve(l)
}

// Registrar registers the driver with the kubelet, as upstream's node-driver-registrar does
// for other drivers: it serves kubelet's plugin registration service on
// <registration dir>/<name>-reg.sock, which the kubelet's plugin watcher finds and calls, and
// tells the kubelet where the driver's socket is.
type Registrar struct {
	// KubeletPath is the driver's socket as the kubelet (on the host) sees it.
	KubeletPath string
	// Dir is the kubelet's plugins_registry directory as mounted in this container.
	Dir string
	// Registered is told the kubelet's answer: nil, or why it refused the driver.
	Registered func(error)
}

// SocketFor is the registration socket of driver name in the registration directory.
func (r *Registrar) SocketFor(name string) string { return filepath.Join(r.Dir, name+"-reg.sock") }

// Serve serves the registration service for driver name until ctx ends.
func (r *Registrar) Serve(ctx context.Context, name string) error {
	l, err := listen(r.SocketFor(name))
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	registration.RegisterRegistrationServer(s, &registrationServer{name: name, endpoint: r.KubeletPath, told: r.Registered})
	go func() {
		<-ctx.Done()
		s.GracefulStop()
	}()
	log.Printf("registering CSI driver %s (kubelet reaches it at %s) on %s", name, r.KubeletPath, r.SocketFor(name))
	return s.Serve(l)
}

type registrationServer struct {
	registration.UnimplementedRegistrationServer
	name, endpoint string
	told           func(error)
}

// GetInfo tells the kubelet what registers: a CSI plugin, its name, its socket and the
// registration API versions it speaks.
func (s *registrationServer) GetInfo(context.Context, *registration.InfoRequest) (*registration.PluginInfo, error) {
	return &registration.PluginInfo{Type: registration.CSIPlugin, Name: s.name, Endpoint: s.endpoint, SupportedVersions: []string{"1.0.0"}}, nil
}

// NotifyRegistrationStatus hears the kubelet's verdict.
func (s *registrationServer) NotifyRegistrationStatus(_ context.Context, st *registration.RegistrationStatus) (*registration.RegistrationStatusResponse, error) {
	var err error
	if !st.GetPluginRegistered() {
		err = fmt.Errorf("the kubelet refused CSI driver %s: %s", s.name, st.GetError())
	}
	if s.told != nil {
		s.told(err)
	}
	return &registration.RegistrationStatusResponse{}, nil
}
