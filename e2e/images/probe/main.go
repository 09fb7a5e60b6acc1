// Command probe is the e2e test image's program (kk.local/e2e/probe): run in a pod, it checks
// what a healthy cluster gives every pod, and prints one line per check:
//
//	probe dns NAME         resolve NAME through the pod's resolver (CoreDNS)
//	probe api              GET https://kubernetes.default.svc/version with the pod's service
//	                       account token and CA (the API through the service IP)
//	probe sleep            wait for a signal (a DaemonSet's long-running container)
//
// It exits non-zero when a check fails, so `kubectl logs` and the pod phase tell the test.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe dns NAME | probe api | probe sleep")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "dns":
		if len(os.Args) < 3 {
			err = fmt.Errorf("probe dns NAME")
			break
		}
		err = dns(os.Args[2])
	case "api":
		err = api()
	case "sleep":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
	case "-v", "version":
		fmt.Println("kk-probe")
	default:
		err = fmt.Errorf("unknown check %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
}

func dns(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for i := 0; i < 10; i++ {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err == nil {
			fmt.Println("OK dns", name, addrs)
			return nil
		}
		last = err
		time.Sleep(time.Second)
	}
	return fmt.Errorf("dns %s: %w", name, last)
}

func api() error {
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return err
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	host := os.Getenv("KUBERNETES_SERVICE_HOST")
	req, _ := http.NewRequest("GET", "https://kubernetes.default.svc/version", nil)
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("api via service %s: %w", host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("api via service %s: %s: %s", host, resp.Status, body)
	}
	fmt.Printf("OK api via service %s: %s\n", host, body)
	return nil
}
