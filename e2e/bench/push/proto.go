package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/e2e/testbed"
)

// protoPush is a diagnosis, not kk: the steps of connector.SSH.Upload as root (local
// sha256, remote stat + sha256sum probe, sftp write of a temp file next to the target,
// chown/chmod, rename), on the same libraries (x/crypto/ssh, pkg/sftp) with the same
// defaults and the same copy (io.Copy from a 256 KiB bufio.Reader over the *os.File into a
// 256 KiB bufio.Writer over the *sftp.File), except for the one change proposed for
// pipeline/connector: the sftp client is started with sftp.UseConcurrentWrites(v.concurrent).
// With concurrent false it is kk's upload as it is today, step for step.
// That copy reaches (*sftp.File).ReadFrom with os's fileWithoutWriteTo wrapper, which still
// has Stat, so ReadFrom learns the size and keeps up to 64 write requests in flight.
// variant is one configuration of the prototype upload.
type variant struct {
	name       string
	concurrent bool // sftp.UseConcurrentWrites
	probeFirst bool // probe the remote file's size first; hash locally only when it matches
}

// variants are measured in every run, in rotating order.
var variants = []variant{
	{"sequential writes (kk today)", false, false},
	{"concurrent writes", true, false},
	{"concurrent writes, probe before hashing", true, true},
}

func protoPush(ctx context.Context, c config, bed *testbed.Bed, bundle, remote string, v variant) pushSample {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	key, err := os.ReadFile(bed.KeyPath)
	if err != nil {
		return pushSample{err: err}
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		return pushSample{err: fmt.Errorf("bed key: %w", err)}
	}
	hk, err := knownhosts.New(bed.KnownHosts)
	if err != nil {
		return pushSample{err: err}
	}
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 10 * time.Second}
	errs := make([]error, len(bed.Machines))
	times := make([][]phase, len(bed.Machines))
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	start := time.Now()
	for i, m := range bed.Machines {
		wg.Go(func() {
			var err error
			if times[i], err = protoUpload(ctx, cfg, m, bundle, remote, v); err != nil {
				errs[i] = fmt.Errorf("%s: %w", m.Name, err)
			}
		})
	}
	wg.Wait()
	s := pushSample{wall: time.Since(start), cpu: selfCPU() - cpu0, err: errors.Join(errs...)}
	// Slowest machine per phase.
	for _, ts := range times {
		for j, t := range ts {
			if j >= len(s.phases) {
				s.phases = append(s.phases, t)
			} else if t.d > s.phases[j].d {
				s.phases[j].d = t.d
			}
		}
	}
	return s
}

func protoUpload(ctx context.Context, cfg *ssh.ClientConfig, m testbed.Machine, bundle, remote string, v variant) (ts []phase, err error) {
	t := time.Now()
	mark := func(name string) {
		now := time.Now()
		ts = append(ts, phase{name, now.Sub(t)})
		t = now
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(m.Address, "22"))
	if err != nil {
		return ts, err
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, net.JoinHostPort(m.Address, "22"), cfg)
	if err != nil {
		conn.Close()
		return ts, err
	}
	client := ssh.NewClient(cc, chans, reqs)
	defer client.Close()
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	mark("dial + SSH handshake")

	exec := func(cmd string) (string, int, error) {
		sess, err := client.NewSession()
		if err != nil {
			return "", 0, err
		}
		defer sess.Close()
		out, err := sess.Output("/bin/sh -c '" + cmd + "'")
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitStatus(), nil
		}
		return string(out), 0, err
	}
	same := errors.New("the target already holds the bundle: the prototype push would transfer nothing")
	if v.probeFirst {
		st, err := os.Stat(bundle)
		if err != nil {
			return ts, err
		}
		out, code, err := exec("stat -c %s -- " + remote)
		if err != nil {
			return ts, err
		}
		mark("remote probe")
		if code == 0 && strings.TrimSpace(out) == fmt.Sprint(st.Size()) {
			want, _, err := download.FileSHA256(context.Background(), bundle)
			if err != nil {
				return ts, err
			}
			if out, code, err := exec("sha256sum -- " + remote); err == nil && code == 0 && strings.Contains(out, want) {
				return ts, same
			}
		}
		mark("local sha256")
	} else {
		want, _, err := download.FileSHA256(context.Background(), bundle) // Upload hashes the local content first
		if err != nil {
			return ts, err
		}
		mark("local sha256")
		out, code, err := exec("stat -c %a -- " + remote + " && sha256sum -- " + remote)
		if err != nil {
			return ts, err
		}
		if code == 0 && strings.Contains(out, want) {
			return ts, same
		}
		mark("remote probe")
	}

	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(v.concurrent))
	if err != nil {
		return ts, fmt.Errorf("start sftp: %w", err)
	}
	defer sc.Close()
	if err := sc.MkdirAll(path.Dir(remote)); err != nil {
		return ts, err
	}
	tmp := path.Join(path.Dir(remote), "."+path.Base(remote)+".proto-tmp")
	w, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return ts, err
	}
	if err := w.Chmod(0o600); err != nil {
		w.Close()
		return ts, err
	}
	fh, err := os.Open(bundle)
	if err != nil {
		w.Close()
		return ts, err
	}
	bw := bufio.NewWriterSize(w, 256<<10) // as connector's File.copyContent
	_, err = io.Copy(bw, bufio.NewReaderSize(fh, 256<<10))
	if err == nil {
		err = bw.Flush()
	}
	fh.Close()
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ts, fmt.Errorf("write %s: %w", tmp, err)
	}
	mark("sftp start, mkdir, write the temp file")
	if _, code, err := exec("chown root:root -- " + tmp + " && chmod 644 -- " + tmp); err != nil || code != 0 {
		return ts, fmt.Errorf("chown/chmod %s: exit %d: %v", tmp, code, err)
	}
	err = sc.PosixRename(tmp, remote)
	mark("chown, chmod, rename")
	return ts, err
}
