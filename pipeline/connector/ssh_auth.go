package connector

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authMethods builds the client's auth methods: public keys (the configured key and
// the agent's keys, tried as one "publickey" method because x/crypto tries each
// method name only once), then password and keyboard-interactive answered with the
// password. The returned closer releases the agent socket.
func (c SSHConfig) authMethods() (methods []ssh.AuthMethod, closer func(), err error) {
	closer = func() {}
	var signers []ssh.Signer
	if len(c.PrivateKey) > 0 || c.PrivateKeyPath != "" {
		s, err := c.signer()
		if err != nil {
			return nil, closer, err
		}
		signers = append(signers, s)
	}
	var agentSigners func() ([]ssh.Signer, error)
	if c.Agent {
		sock := os.Getenv("SSH_AUTH_SOCK")
		if sock == "" {
			return nil, closer, fmt.Errorf("host %s: ssh-agent requested but SSH_AUTH_SOCK is not set", c.Host)
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, closer, fmt.Errorf("host %s: connect to ssh-agent: %w", c.Host, err)
		}
		closer = func() { conn.Close() }
		agentSigners = agent.NewClient(conn).Signers
	}
	if len(signers) > 0 || agentSigners != nil {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			all := append([]ssh.Signer(nil), signers...)
			if agentSigners != nil {
				if more, err := agentSigners(); err == nil {
					all = append(all, more...)
				}
			}
			return all, nil
		}))
	}
	if c.Password != "" {
		pw := c.Password
		methods = append(methods,
			ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		closer()
		return nil, func() {}, fmt.Errorf("host %s: no SSH credentials: set a private key, a password or use the ssh-agent", c.Host)
	}
	return methods, closer, nil
}

// signer parses the configured private key, decrypting it with Passphrase if needed.
// Errors name the host and the key file, never the key or passphrase.
func (c SSHConfig) signer() (ssh.Signer, error) {
	pem, src := c.PrivateKey, "private key"
	if len(pem) == 0 {
		src = "private key " + c.PrivateKeyPath
		var err error
		pem, err = os.ReadFile(c.PrivateKeyPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("host %s: private key file %s does not exist", c.Host, c.PrivateKeyPath)
		}
		if err != nil {
			return nil, fmt.Errorf("host %s: read private key file %s: %w", c.Host, c.PrivateKeyPath, errors.Unwrap(err))
		}
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if c.Passphrase == "" {
			return nil, fmt.Errorf("host %s: %s is encrypted: a passphrase is needed", c.Host, src)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(c.Passphrase))
		if err != nil {
			return nil, fmt.Errorf("host %s: %s: wrong passphrase or unreadable key", c.Host, src)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("host %s: %s: %v", c.Host, src, err)
	}
	return s, nil
}
