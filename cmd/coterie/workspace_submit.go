package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/request"
)

func newWorkspaceSubmitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "Queue a transaction or a config change for an API user",
	}
	cmd.AddCommand(newWorkspaceSubmitTxCmd(), newWorkspaceSubmitRawCmd(), newWorkspaceSubmitConfigChangeCmd())
	return cmd
}

// wsTxFlags are the flags of `coterie workspace submit tx`.
type wsTxFlags struct {
	user, asset, amount, to, from, note, fee, idem string
	count                                          int
	rate                                           float64
	ttl                                            time.Duration
}

func newWorkspaceSubmitTxCmd() *cobra.Command {
	var f wsTxFlags
	cmd := &cobra.Command{
		Use:   "tx --data-dir DIR --user U --asset ETH --amount 1.5 --to ADDR [--count N] [--rate R]",
		Short: "Queue transaction signing requests",
		Long: "tx queues --count transfers of --amount --asset from vault account --from to the one-time " +
			"address --to, at most --rate per second (0: as fast as the workspace takes them). The " +
			"workspace builds each transaction's digest and its derivation path (44/coin/vault/0/0). " +
			"With --idempotency-key K, the Nth submission uses key K-N, so rerunning the command " +
			"creates nothing twice. It prints each request ID, then the submission rate.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorkspaceSubmitTx(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "the API user (required)")
	fl.StringVar(&f.asset, "asset", "", "the asset, for example ETH (required)")
	fl.StringVar(&f.amount, "amount", "", "the amount, a decimal (required)")
	fl.StringVar(&f.to, "to", "", "the destination address (required)")
	fl.StringVar(&f.from, "from", "0", "the source vault account ID")
	fl.StringVar(&f.note, "note", "", "a note")
	fl.StringVar(&f.fee, "fee", "", "the fee, a decimal")
	fl.StringVar(&f.idem, "idempotency-key", "", "make the submissions at most once")
	fl.IntVar(&f.count, "count", 1, "how many transactions to submit")
	fl.Float64Var(&f.rate, "rate", 0, "submissions per second (0: unpaced)")
	fl.DurationVar(&f.ttl, "ttl", 0, "how long each request stays open (default: the server's)")
	for _, name := range []string{"user", "asset", "amount", "to"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runWorkspaceSubmitTx(cmd *cobra.Command, f wsTxFlags) error {
	if f.count < 1 || f.count > 10_000_000 {
		return errors.New("workspace submit tx: --count must be 1 to 10000000")
	}
	if f.rate < 0 {
		return errors.New("workspace submit tx: --rate must not be negative")
	}
	tx := &protocol.WsTransaction{
		Asset: f.asset, Amount: f.amount, Note: f.note, Fee: f.fee,
		Source:       &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: f.from},
		Destinations: []*protocol.WsDestination{{Peer: &protocol.WsPeer{Type: "ONE_TIME_ADDRESS", Address: f.to}, Amount: f.amount}},
	}
	// Check locally first, so a typo fails before anything is sent.
	if err := request.ValidateTransaction(tx); err != nil {
		return err
	}
	a, err := wsAdmin(cmd)
	if err != nil {
		return err
	}
	defer a.Close()
	var tick *time.Ticker
	if f.rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / f.rate))
		defer tick.Stop()
	}
	start := time.Now()
	replayed := 0
	for i := 1; i <= f.count; i++ {
		if tick != nil && i > 1 {
			select {
			case <-tick.C:
			case <-cmd.Context().Done():
				return cmd.Context().Err()
			}
		}
		key := f.idem
		if key != "" && f.count > 1 {
			key = fmt.Sprintf("%s-%d", f.idem, i)
		}
		ctx, cancel := wsCtx(cmd)
		r, err := a.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{
			UserId: f.user, IdempotencyKey: key, Transaction: tx, TtlSeconds: uint32(f.ttl / time.Second),
		})
		cancel()
		if first := wsReplayed(err); first != nil {
			// A rerun with the same key: the request exists, nothing new.
			fmt.Fprintf(cmd.OutOrStdout(), "%s (already submitted with key %s)\n", first.Id, key)
			replayed++
			continue
		}
		if err != nil {
			return fmt.Errorf("submission %d of %d: %w", i, f.count, wsErr(cmd, a, err))
		}
		fmt.Fprintln(cmd.OutOrStdout(), r.Id)
	}
	el := time.Since(start)
	fmt.Fprintf(cmd.ErrOrStderr(), "submitted %d transactions (%d new, %d already submitted) in %s (%.0f/s)\n",
		f.count, f.count-replayed, replayed, el.Round(time.Millisecond), float64(f.count)/el.Seconds())
	return nil
}

// wsRawFlags are the flags of `coterie workspace submit raw`.
type wsRawFlags struct {
	user, asset, amount, from, note, idem string
	digests, paths                        []string
	ttl                                   time.Duration
}

func newWorkspaceSubmitRawCmd() *cobra.Command {
	var f wsRawFlags
	cmd := &cobra.Command{
		Use:   "raw --data-dir DIR --user U --digest HEX --path m/44/60/0/0/7 [--digest HEX --path P ...]",
		Short: "Queue a RAW signing request for caller-chosen digests and derivation paths",
		Long: "raw queues one RAW transaction signing request that signs the given message digests, as the " +
			"custody platform's RAW signing does. Each --digest (32 bytes in hex, 0x optional) is signed with " +
			"the key at the --path given in the same position (BIP-32, unhardened: m/44/60/0/0/7); repeat both " +
			"for a request with several digests. --asset defaults to the native asset of the first path's " +
			"BIP-44 coin type (m/44/60/... is ETH). The request carries no amount and no destination unless " +
			"--amount is given. It prints the request ID.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWorkspaceSubmitRaw(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "the API user, a signer (required)")
	fl.StringArrayVar(&f.digests, "digest", nil, "a 32-byte digest to sign, in hex (required, repeatable)")
	fl.StringArrayVar(&f.paths, "path", nil, "the derivation path of the --digest in the same position, like m/44/60/0/0/7 (required, repeatable)")
	fl.StringVar(&f.asset, "asset", "", "the asset (default: from the first path's coin type)")
	fl.StringVar(&f.amount, "amount", "", "the amount, a decimal (default: none)")
	fl.StringVar(&f.from, "from", "0", "the source vault account ID")
	fl.StringVar(&f.note, "note", "", "a note")
	fl.StringVar(&f.idem, "idempotency-key", "", "make the submission at most once")
	fl.DurationVar(&f.ttl, "ttl", 0, "how long the request stays open (default: the server's)")
	for _, name := range []string{"user", "digest", "path"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func runWorkspaceSubmitRaw(cmd *cobra.Command, f wsRawFlags) error {
	digests, err := wsRawDigests(f.digests, f.paths)
	if err != nil {
		return fmt.Errorf("workspace submit raw: %w", err)
	}
	asset := f.asset
	if asset == "" {
		var ok bool
		if asset, ok = request.AssetOfPath(digests[0].GetDerivationPath()); !ok {
			return fmt.Errorf("workspace submit raw: --asset is required: path %s names no coin type the workspace knows",
				mpc.Path(digests[0].GetDerivationPath()))
		}
	}
	tx := &protocol.WsTransaction{
		Asset: asset, Amount: f.amount, Note: f.note, Operation: "RAW",
		Source: &protocol.WsPeer{Type: "VAULT_ACCOUNT", Id: f.from}, Digests: digests,
	}
	// Check locally first, so a typo fails before anything is sent.
	if err := request.ValidateTransaction(tx); err != nil {
		return fmt.Errorf("workspace submit raw: %w", err)
	}
	return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
		r, err := a.SubmitTransaction(ctx, &protocol.WsSubmitTransactionRequest{
			UserId: f.user, IdempotencyKey: f.idem, Transaction: tx, TtlSeconds: uint32(f.ttl / time.Second),
		})
		if first := wsReplayed(err); first != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "%s (already submitted with key %s)\n", first.Id, f.idem)
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), r.Id)
		return nil
	})
}

// wsRawDigests pairs the --digest and --path flags in order. It reports
// every bad one at once.
func wsRawDigests(digests, paths []string) ([]*protocol.WsDigestToSign, error) {
	if len(digests) == 0 {
		return nil, errors.New("give at least one --digest, each with its --path")
	}
	if len(digests) != len(paths) {
		return nil, fmt.Errorf("%d --digest but %d --path: give one --path per --digest, in the same order", len(digests), len(paths))
	}
	var errs []error
	out := make([]*protocol.WsDigestToSign, len(digests))
	for i := range digests {
		d, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(digests[i], "0x"), "0X"))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--digest %d: %q is not hex", i+1, clipFlag(digests[i])))
		case len(d) != request.DigestLen:
			errs = append(errs, fmt.Errorf("--digest %d is %d bytes; a digest is %d bytes (%d hex digits)", i+1, len(d), request.DigestLen, 2*request.DigestLen))
		}
		path, err := mpc.ParsePath(paths[i])
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--path %d: %w", i+1, err))
		case len(path) == 0 || len(path) > request.MaxPathDepth:
			errs = append(errs, fmt.Errorf("--path %d %q: a path has 1 to %d steps below m", i+1, paths[i], request.MaxPathDepth))
		}
		out[i] = &protocol.WsDigestToSign{Digest: d, DerivationPath: path}
	}
	return out, errors.Join(errs...)
}

// clipFlag shortens a flag value quoted in an error.
func clipFlag(s string) string {
	if len(s) > 70 {
		return s[:70] + "..."
	}
	return s
}

// wsCCFlags are the payload flags of `coterie workspace submit
// config-change`; each type uses some of them.
type wsCCFlags struct {
	user, typ, idem                      string
	name, exchangeType, accountID        string
	provider, accountNumber, currency    string
	asset, address, tag                  string
	peerNetworkID, routingPolicy         string
	email, userRole, userEmail, deviceID string
	oldThreshold, newThreshold, admins   uint32
	enabled                              bool
	ttl                                  time.Duration
}

func newWorkspaceSubmitConfigChangeCmd() *cobra.Command {
	var f wsCCFlags
	cmd := &cobra.Command{
		Use: "config-change --data-dir DIR --user U --type TYPE [payload flags]",
		Short: "Queue a config-change approval request: EXCHANGE, FIAT_ACCOUNT, UNMANAGED_WALLET, " +
			"ADD_NETWORK_CONNECTION, ADD_USER, CHANGE_QUORUM_THRESHOLD, RE_ENROLL_DEVICE or ENABLE_ONE_TIME_ADDRESS",
		Long: "config-change queues one approval request of --type for an approver. Each type reads its own " +
			"payload flags, and the ones not given take the demo defaults shown:\n" +
			"  EXCHANGE                  --exchange-type BINANCE --name --account-id\n" +
			"  FIAT_ACCOUNT              --provider --name --account-number --currency USD\n" +
			"  UNMANAGED_WALLET          --name --asset ETH --address --tag\n" +
			"  ADD_NETWORK_CONNECTION    --peer-network-id --name --routing-policy\n" +
			"  ADD_USER                  --email --name --user-role VIEWER\n" +
			"  CHANGE_QUORUM_THRESHOLD   --old-threshold 2 --new-threshold 3 --admins 5\n" +
			"  RE_ENROLL_DEVICE          --user-email --device-id\n" +
			"  ENABLE_ONE_TIME_ADDRESS   --enabled\n",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, err := request.ParseType(f.typ)
			if err != nil {
				return err
			}
			cc := wsConfigChange(typ, f)
			if err := request.ValidateConfigChange(cc); err != nil {
				return err
			}
			return withAdmin(cmd, wsTimeout, func(ctx context.Context, a *client.Admin) error {
				r, err := a.SubmitConfigChange(ctx, &protocol.WsSubmitConfigChangeRequest{
					UserId: f.user, IdempotencyKey: f.idem, ConfigChange: cc, TtlSeconds: uint32(f.ttl / time.Second),
				})
				if first := wsReplayed(err); first != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s (already submitted with key %s)\n", first.Id, f.idem)
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), r.Id)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.user, "user", "", "the API user, an approver (required)")
	fl.StringVar(&f.typ, "type", "", "the config-change type (required)")
	fl.StringVar(&f.idem, "idempotency-key", "", "make the submission at most once")
	fl.DurationVar(&f.ttl, "ttl", 0, "how long the request stays open (default: the server's)")
	fl.StringVar(&f.name, "name", "demo", "the new object's name")
	fl.StringVar(&f.exchangeType, "exchange-type", "BINANCE", "EXCHANGE: the exchange")
	fl.StringVar(&f.accountID, "account-id", "", "EXCHANGE: the account at the exchange")
	fl.StringVar(&f.provider, "provider", "demo-bank", "FIAT_ACCOUNT: the bank or provider")
	fl.StringVar(&f.accountNumber, "account-number", "DE89370400440532013000", "FIAT_ACCOUNT: the account number")
	fl.StringVar(&f.currency, "currency", "USD", "FIAT_ACCOUNT: the currency")
	fl.StringVar(&f.asset, "asset", "ETH", "UNMANAGED_WALLET: the asset")
	fl.StringVar(&f.address, "address", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "UNMANAGED_WALLET: the address")
	fl.StringVar(&f.tag, "tag", "", "UNMANAGED_WALLET: the memo or tag")
	fl.StringVar(&f.peerNetworkID, "peer-network-id", "demo-network", "ADD_NETWORK_CONNECTION: the peer's network ID")
	fl.StringVar(&f.routingPolicy, "routing-policy", "", "ADD_NETWORK_CONNECTION: the routing policy")
	fl.StringVar(&f.email, "email", "new.user@example.com", "ADD_USER: the new user's email")
	fl.StringVar(&f.userRole, "user-role", "VIEWER", "ADD_USER: the new user's role")
	fl.StringVar(&f.userEmail, "user-email", "owner@example.com", "RE_ENROLL_DEVICE: whose device")
	fl.StringVar(&f.deviceID, "device-id", "device-1", "RE_ENROLL_DEVICE: the device")
	fl.Uint32Var(&f.oldThreshold, "old-threshold", 2, "CHANGE_QUORUM_THRESHOLD: the current threshold")
	fl.Uint32Var(&f.newThreshold, "new-threshold", 3, "CHANGE_QUORUM_THRESHOLD: the new threshold")
	fl.Uint32Var(&f.admins, "admins", 5, "CHANGE_QUORUM_THRESHOLD: the number of admins")
	fl.BoolVar(&f.enabled, "enabled", true, "ENABLE_ONE_TIME_ADDRESS: enable (true) or disable")
	_ = cmd.MarkFlagRequired("user")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

func wsConfigChange(t protocol.WsConfigChangeType, f wsCCFlags) *protocol.WsConfigChange {
	cc := &protocol.WsConfigChange{Type: t}
	switch t {
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_EXCHANGE:
		cc.Payload = &protocol.WsConfigChange_Exchange{Exchange: &protocol.WsExchangeAccount{ExchangeType: f.exchangeType, Name: f.name, AccountId: f.accountID}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_FIAT_ACCOUNT:
		cc.Payload = &protocol.WsConfigChange_FiatAccount{FiatAccount: &protocol.WsFiatAccount{Provider: f.provider, Name: f.name, AccountNumber: f.accountNumber, Currency: f.currency}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_UNMANAGED_WALLET:
		cc.Payload = &protocol.WsConfigChange_UnmanagedWallet{UnmanagedWallet: &protocol.WsUnmanagedWallet{Name: f.name, Asset: f.asset, Address: f.address, Tag: f.tag}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_NETWORK_CONNECTION:
		cc.Payload = &protocol.WsConfigChange_NetworkConnection{NetworkConnection: &protocol.WsNetworkConnection{PeerNetworkId: f.peerNetworkID, Name: f.name, RoutingPolicy: f.routingPolicy}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ADD_USER:
		cc.Payload = &protocol.WsConfigChange_AddUser{AddUser: &protocol.WsAddUser{Email: f.email, Name: f.name, Role: f.userRole}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_CHANGE_QUORUM_THRESHOLD:
		cc.Payload = &protocol.WsConfigChange_QuorumChange{QuorumChange: &protocol.WsQuorumChange{OldThreshold: f.oldThreshold, NewThreshold: f.newThreshold, Admins: f.admins}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_RE_ENROLL_DEVICE:
		cc.Payload = &protocol.WsConfigChange_DeviceReEnroll{DeviceReEnroll: &protocol.WsDeviceReEnroll{UserEmail: f.userEmail, DeviceId: f.deviceID}}
	case protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS:
		cc.Payload = &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: f.enabled}}
	}
	return cc
}

// wsReplayed returns the request that an identical earlier submission with
// the same idempotency key created, when err says so.
func wsReplayed(err error) *protocol.WsRequest {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.AlreadyExists {
		return nil
	}
	for _, d := range st.Details() {
		if r, ok := d.(*protocol.WsRequest); ok {
			return r
		}
	}
	return nil
}
