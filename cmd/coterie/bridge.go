package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/coterie-mpc/coterie/internal/bridge"
	"github.com/coterie-mpc/coterie/internal/logthrottle"
)

// bridgeFlags are the flags of `coterie bridge`.
type bridgeFlags struct {
	forwards   []string
	proxy      string
	allow      []string
	store      string
	storeDir   string
	enclaveCID uint32
	maxConns   int
}

func newBridgeCmd() *cobra.Command {
	var f bridgeFlags
	cmd := &cobra.Command{
		Use:   "bridge [--forward LISTEN=TARGET ...] [--proxy LISTEN --allow HOST:PORT ...] [--store LISTEN --store-dir DIR]",
		Short: "Carry a node's connections in and out of an enclave that has no network (run it on the parent)",
		Long: "bridge runs on a Nitro enclave's parent instance (or beside a node in a network namespace " +
			"without interfaces) and carries the node's connections, which are TLS the node ends itself.\n\n" +
			"--forward LISTEN=TARGET (repeatable) relays each connection accepted on LISTEN to TARGET: " +
			"a TCP port to the node's vsock listener (raft: 0.0.0.0:7000=vsock://16:7000), or a vsock port " +
			"to a TCP service (KMS: vsock://:8000=kms.eu-west-1.amazonaws.com:443).\n\n" +
			"--proxy LISTEN serves HTTP CONNECT for the node's network.egress_proxy, and dials only the " +
			"--allow HOST:PORT destinations (repeatable, exact): its peers' raft addresses, the workspace, " +
			"the callback handler.\n\n" +
			"--store LISTEN serves the node's storage.parent from --store-dir: the copies of its sealed " +
			"store and its enclave's data key file, which an enclave's in-memory data directory loses on a " +
			"restart, and the join token of its first start, which the operator puts there as join-token.\n\n" +
			"Addresses are host:port (TCP), vsock://CID:PORT (vsock://:PORT to listen) or unix:PATH. " +
			"With any vsock listener, --enclave-cid names the one enclave it serves; connections from " +
			"other enclaves or VMs on the machine are closed. " +
			"It stops on SIGINT or SIGTERM.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// Refusals under a flood repeat: identical records are throttled.
			h, err := logthrottle.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}), logthrottle.DefaultConfig())
			if err != nil {
				return err
			}
			defer h.Flush()
			return runBridge(ctx, f, slog.New(h))
		},
	}
	cmd.Flags().StringArrayVar(&f.forwards, "forward", nil, "relay connections on LISTEN to TARGET (LISTEN=TARGET, repeatable)")
	cmd.Flags().StringVar(&f.proxy, "proxy", "", "serve the node's egress CONNECT proxy on this address")
	cmd.Flags().StringArrayVar(&f.allow, "allow", nil, "a HOST:PORT the proxy may dial (repeatable)")
	cmd.Flags().StringVar(&f.store, "store", "", "serve the node's storage.parent on this address")
	cmd.Flags().StringVar(&f.storeDir, "store-dir", "", "the directory --store keeps the node's files in")
	cmd.Flags().Uint32Var(&f.enclaveCID, "enclave-cid", 0, "the context id of the enclave the vsock listeners serve")
	cmd.Flags().IntVar(&f.maxConns, "max-conns", bridge.DefaultConfig().MaxConns, "connections each listener serves at once")
	return cmd
}

// runBridge listens on every address the flags name, then serves them all
// until ctx ends or one fails.
func runBridge(ctx context.Context, f bridgeFlags, log *slog.Logger) error {
	cfg := bridge.DefaultConfig()
	cfg.Allow, cfg.MaxConns, cfg.Logger = f.allow, f.maxConns, log
	if err := cfg.Validate(); err != nil {
		return err
	}
	if len(f.forwards) == 0 && f.proxy == "" && f.store == "" {
		return errors.New("bridge: nothing to do: give --forward, --proxy or --store")
	}
	if f.proxy == "" && len(f.allow) > 0 {
		return errors.New("bridge: --allow applies to --proxy, which is not given")
	}
	if f.proxy != "" && len(f.allow) == 0 {
		return errors.New("bridge: --proxy allows no destination: give --allow HOST:PORT for each peer and service")
	}
	if (f.store == "") != (f.storeDir == "") {
		return errors.New("bridge: --store and --store-dir go together")
	}
	var files *bridge.FileStore
	if f.storeDir != "" {
		if err := os.MkdirAll(f.storeDir, 0o700); err != nil {
			return fmt.Errorf("bridge: --store-dir: %w", err)
		}
		var err error
		if files, err = bridge.NewFileStore(f.storeDir, log); err != nil {
			return err
		}
	}
	type forward struct {
		ln     net.Listener
		target bridge.Addr
	}
	var listeners []net.Listener
	listen := func(addr string) (net.Listener, error) {
		a, err := bridge.ParseAddr(addr)
		if err != nil {
			return nil, err
		}
		if a.Kind == bridge.VSock && f.enclaveCID == 0 {
			return nil, fmt.Errorf("bridge: %s is a vsock listener: give --enclave-cid, the enclave it serves", addr)
		}
		ln, err := a.Listen()
		if err != nil {
			return nil, fmt.Errorf("bridge: listen on %s: %w", addr, err)
		}
		listeners = append(listeners, ln)
		if a.Kind == bridge.VSock {
			ln = bridge.OnlyFrom(ln, f.enclaveCID)
		}
		return ln, nil
	}
	fail := func(err error) error {
		for _, ln := range listeners {
			ln.Close()
		}
		return err
	}
	var forwards []forward
	for _, spec := range f.forwards {
		from, to, ok := strings.Cut(spec, "=")
		if !ok {
			return fail(fmt.Errorf("bridge: --forward %q is not LISTEN=TARGET", spec))
		}
		target, err := bridge.ParseAddr(to)
		if err != nil {
			return fail(fmt.Errorf("--forward %q: %w", spec, err))
		}
		ln, err := listen(from)
		if err != nil {
			return fail(err)
		}
		forwards = append(forwards, forward{ln, target})
	}
	var proxy, store net.Listener
	if f.proxy != "" {
		var err error
		if proxy, err = listen(f.proxy); err != nil {
			return fail(err)
		}
	}
	if f.store != "" {
		var err error
		if store, err = listen(f.store); err != nil {
			return fail(err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, fw := range forwards {
		log.Info("bridge: forwarding", "listen", fw.ln.Addr().String(), "target", fw.target.String())
		g.Go(func() error { return bridge.Forward(gctx, fw.ln, fw.target, cfg) })
	}
	if proxy != nil {
		log.Info("bridge: egress proxy", "listen", proxy.Addr().String(), "allow", strings.Join(f.allow, ","))
		g.Go(func() error { return bridge.Proxy(gctx, proxy, cfg) })
	}
	if store != nil {
		log.Info("bridge: file store", "listen", store.Addr().String(), "dir", f.storeDir)
		g.Go(func() error { return bridge.ServeFiles(gctx, store, files, cfg.MaxConns) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}
