package main

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/callback"
)

func newCallbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "callback",
		Short: "Run the reference callback handler and manage its signing key",
	}
	cmd.AddCommand(newCallbackServeCmd(), newCallbackKeygenCmd(), newCallbackPublicKeyCmd())
	return cmd
}

// callbackServeFlags are the flags of `coterie callback serve`.
type callbackServeFlags struct {
	policy       string
	key          string
	listen       string
	cosignerKeys []string
	tlsCert      string
	tlsKey       string
}

func newCallbackServeCmd() *cobra.Command {
	var f callbackServeFlags
	cmd := &cobra.Command{
		Use:   "serve --policy FILE --key FILE [--listen ADDR] [--cosigner-key FILE ...]",
		Short: "Run the reference callback handler, answering from a YAML policy",
		Long: "serve answers the co-signer's callback requests (protocol v2) from a YAML policy " +
			"(see callback/testdata/policy.yaml). It verifies each request JWT against the co-signers' " +
			"callback public keys (--cosigner-key, repeatable; from `coterie node print-public-key`) and " +
			"signs each answer with the handler key (--key: RSA signs RS256, EC P-256 signs ES256). " +
			"Each answer carries its issue time (iat) and requestTokenHash, the hash of the request token it " +
			"answers, so a node may set callback.require_request_token_hash to refuse replayed answers. " +
			"Without --cosigner-key, request signatures are not verified: for development only. " +
			"It serves plain HTTP unless --tls-cert and --tls-key are given; the co-signer accepts " +
			"plain HTTP on loopback only. It stops on SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCallbackServe(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "the policy file (required)")
	fl.StringVar(&f.key, "key", "", "the handler's private key file, PEM (required)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8090", "the address to listen on")
	fl.StringArrayVar(&f.cosignerKeys, "cosigner-key", nil, "a co-signer node's callback public key file, PEM (repeatable)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate file (with --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "serve HTTPS with this private key file (with --tls-cert)")
	_ = cmd.MarkFlagRequired("policy")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func runCallbackServe(cmd *cobra.Command, f callbackServeFlags) error {
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("callback serve: give both --tls-cert and --tls-key, or neither")
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	policy, err := callback.LoadPolicy(f.policy)
	if err != nil {
		return fmt.Errorf("callback serve: %w", err)
	}
	key, err := readPrivateKey(f.key, logger)
	if err != nil {
		return fmt.Errorf("callback serve: --key: %w", err)
	}
	cfg := callback.DefaultServerConfig()
	cfg.Policy = policy
	cfg.Key = key
	cfg.Logger = logger
	for _, path := range f.cosignerKeys {
		pub, err := readPublicKey(path)
		if err != nil {
			return fmt.Errorf("callback serve: --cosigner-key %s: %w", path, err)
		}
		rsaPub, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("callback serve: --cosigner-key %s: a co-signer's callback key is RSA", path)
		}
		cfg.CosignerKeys = append(cfg.CosignerKeys, rsaPub)
	}
	cfg.InsecureSkipRequestVerify = len(cfg.CosignerKeys) == 0
	srv, err := callback.NewServer(cfg)
	if err != nil {
		return fmt.Errorf("callback serve: %w", err)
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("callback serve: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "callback server listening on %s://%s\n", scheme, ln.Addr())

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- hs.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("callback serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("callback server stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fmt.Errorf("callback serve: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("callback serve: %w", err)
	}
	return nil
}

func newCallbackKeygenCmd() *cobra.Command {
	var (
		out     string
		keyType string
	)
	cmd := &cobra.Command{
		Use:   "keygen --out FILE [--type ec|rsa]",
		Short: "Create a callback handler's signing key and print its public key",
		Long: "keygen writes a new private key (PKCS #8 PEM) to FILE with mode 0600, refusing to overwrite, " +
			"and prints the public key (PEM) to standard output: configure it as the co-signer's handler key. " +
			"An ec key (P-256) signs ES256; an rsa key (2048 bits) signs RS256.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, err := callback.ParseKeyType(keyType)
			if err != nil {
				return fmt.Errorf("callback keygen: %w", err)
			}
			key, err := callback.GenerateKey(typ)
			if err != nil {
				return fmt.Errorf("callback keygen: %w", err)
			}
			privPEM, err := callback.MarshalPrivateKeyPEM(key)
			if err != nil {
				return fmt.Errorf("callback keygen: %w", err)
			}
			pubPEM, err := callback.MarshalPublicKeyPEM(key.Public())
			if err != nil {
				return fmt.Errorf("callback keygen: %w", err)
			}
			if err := writeNewFile(out, privPEM); err != nil {
				return fmt.Errorf("callback keygen: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote the %s private key to %s\n", typ, out)
			_, err = cmd.OutOrStdout().Write(pubPEM)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the private key file to create (required)")
	cmd.Flags().StringVar(&keyType, "type", "ec", "the key type: ec (P-256, ES256) or rsa (2048 bits, RS256)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newCallbackPublicKeyCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "public-key --key FILE",
		Short: "Print the public key of a callback handler's private key file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := readPrivateKey(keyFile, nil)
			if err != nil {
				return fmt.Errorf("callback public-key: %w", err)
			}
			pubPEM, err := callback.MarshalPublicKeyPEM(key.Public())
			if err != nil {
				return fmt.Errorf("callback public-key: %w", err)
			}
			_, err = cmd.OutOrStdout().Write(pubPEM)
			return err
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the handler's private key file, PEM (required)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// writeNewFile creates path with mode 0600 and writes data, failing if the
// file exists; a partly written file is removed.
func writeNewFile(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// readPrivateKey reads a PEM private key file, warning through logger
// (when not nil) if other users may read it.
func readPrivateKey(path string, logger *slog.Logger) (crypto.Signer, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 && logger != nil {
		logger.Warn("private key file is readable by other users", "path", path, "mode", info.Mode().Perm().String())
	}
	return callback.ParsePrivateKeyPEM(data)
}

func readPublicKey(path string) (any, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	return callback.ParsePublicKeyPEM(data)
}

// readSmallFile reads a key file, refusing anything too large to be one.
func readSmallFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, 64<<10+1))
	if err != nil {
		return nil, err
	}
	if len(data) > 64<<10 {
		return nil, fmt.Errorf("%s is too large for a key file", path)
	}
	return data, nil
}
