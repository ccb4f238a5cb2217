package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/node"
)

// maxHandlerKeyBytes bounds the --public-key file: a PEM public key is
// well under a kilobyte.
const maxHandlerKeyBytes = 64 << 10

// callbackFlags are the flags of `node cluster callback`.
type callbackFlags struct {
	configPath, user, url, keyFile string
	set, clear, asJSON             bool
}

// check refuses combinations that say two things at once.
func (f callbackFlags) check() error {
	switch {
	case f.set && (f.user != "" || f.url != "" || f.keyFile != "" || f.clear):
		return errors.New("--set records this node's configured handler as the cluster's: it takes no --user, --url, --public-key or --clear")
	case f.user == "" && (f.url != "" || f.keyFile != "" || f.clear):
		return errors.New("--url, --public-key and --clear change one API user's handler: name it with --user")
	case f.clear && (f.url != "" || f.keyFile != ""):
		return errors.New("--clear takes no --url or --public-key")
	case f.user != "" && !f.clear && (f.url == "") != (f.keyFile == ""):
		return errors.New("a user's handler needs both --url and --public-key (or --clear to remove it)")
	case f.user != "" && !f.clear && f.url == "":
		return errors.New("--user needs --url and --public-key to set the user's handler, or --clear to remove it")
	}
	return nil
}

func newClusterCallbackCmd() *cobra.Command {
	var f callbackFlags
	cmd := &cobra.Command{
		Use: "callback --config FILE [--set | --user USER (--url URL --public-key FILE | --clear)] [--json]",
		Short: "Show the cluster's callback handlers, make this node's configured one the cluster's, " +
			"or set or clear an API user's own",
		Long: "callback shows the callback handler the cluster records (its URL and a hash of its key), whether " +
			"this node's config agrees, and the API users that have a handler of their own. Every node asks the " +
			"cluster's handler: a node whose config names another, or none, does not sign. --set records the " +
			"handler this node's config names as the cluster's: to move the cluster to a new handler, set it " +
			"through one node, then update the other nodes' configs and restart them.\n\n" +
			"--user USER --url URL --public-key FILE gives one API user a handler of its own (FILE holds its " +
			"public key in PEM, like callback.handler_public_key): every node asks it about that user's requests " +
			"from the next request on, with no restart and no change to any config. The URL must be https, or " +
			"http to a loopback host; the node's callback.ca_file, timeout and freshness settings apply to it as " +
			"to the cluster's handler. --user USER --clear removes it, and the user's requests go to the " +
			"cluster's handler again. USER is WORKSPACE/USER, or a user id that only one workspace has " +
			"(`coterie node users` lists them). A user's handler is never \"none\": no user is approved " +
			"automatically while the cluster has a handler.",
		Example: "  coterie node cluster callback --config node.yaml\n" +
			"  coterie node cluster callback --config node.yaml --user u-0001 --url https://risk.example/cb --public-key risk.pem\n" +
			"  coterie node cluster callback --config node.yaml --user u-0001 --clear",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			var keyPEM []byte
			if f.keyFile != "" {
				var err error
				if keyPEM, err = readHandlerKey(f.keyFile); err != nil {
					return err
				}
			}
			ctx, c, cancel, err := nodeCall(cmd, f.configPath, clusterCallTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			var l node.CallbackListing
			switch {
			case f.user != "" && f.clear:
				l, err = c.ClearUserCallback(ctx, f.user)
			case f.user != "":
				l, err = c.SetUserCallback(ctx, f.user, f.url, keyPEM)
			default:
				l, err = c.Callback(ctx, f.set)
			}
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(cmd.OutOrStdout(), l)
			}
			return printCallbacks(cmd.OutOrStdout(), l)
		},
	}
	configFlag(cmd, &f.configPath)
	fl := cmd.Flags()
	fl.BoolVar(&f.set, "set", false, "record this node's configured handler as the cluster's")
	fl.StringVar(&f.user, "user", "", "the API user whose own handler to set or clear (WORKSPACE/USER, or a user id)")
	fl.StringVar(&f.url, "url", "", "with --user: the user's handler URL (https, or http to loopback)")
	fl.StringVar(&f.keyFile, "public-key", "", "with --user: a PEM file with the user's handler's public key")
	fl.BoolVar(&f.clear, "clear", false, "with --user: remove the user's own handler; its requests go to the cluster's")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

// readHandlerKey reads a --public-key file, bounded.
func readHandlerKey(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--public-key: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxHandlerKeyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("--public-key: %w", err)
	}
	if len(b) > maxHandlerKeyBytes {
		return nil, fmt.Errorf("--public-key: %s is larger than %d bytes", path, maxHandlerKeyBytes)
	}
	return b, nil
}

// printCallbacks prints the cluster's handler, whether this node agrees,
// and the users' own handlers as a table.
func printCallbacks(w io.Writer, l node.CallbackListing) error {
	switch {
	case !l.Recorded:
		fmt.Fprintln(w, "the cluster records no callback handler yet")
	case l.URL == "":
		fmt.Fprintln(w, "callback handler  none: requests of users without a handler of their own are approved automatically")
	default:
		fmt.Fprintf(w, "callback handler  %s\nkey sha256        %s\n", l.URL, l.KeySHA256)
	}
	fmt.Fprintf(w, "this node agrees  %t\n", l.ThisNode)
	if len(l.Users) == 0 {
		fmt.Fprintln(w, "no API user has a handler of its own")
		return nil
	}
	fmt.Fprintln(w, "\nAPI users with a handler of their own:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tURL\tKEY SHA256")
	for _, u := range l.Users {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.User, u.URL, u.KeySHA256)
	}
	return tw.Flush()
}
