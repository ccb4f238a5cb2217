package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/node"
)

// adminClient loads the config at path and returns a client of the node's
// admin API.
func adminClient(path string) (*node.AdminClient, error) {
	cfg, err := node.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	return node.NewAdminClient(cfg)
}

// nodeCall dials the admin API of the node whose config configPath names,
// and bounds the call by d.
func nodeCall(cmd *cobra.Command, configPath string, d time.Duration) (context.Context, *node.AdminClient, context.CancelFunc, error) {
	c, err := adminClient(configPath)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), d)
	return ctx, c, cancel, nil
}

// maxTokenBytes bounds what --token-file reads: a pairing or join token
// is a few hundred bytes.
const maxTokenBytes = 64 << 10

func newNodePairCmd() *cobra.Command {
	var configPath, tok, tokFile, role string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pair --config FILE --token-file -|PATH [--role signer|approver|both] [--json]",
		Short: "Pair the running node's cluster with a workspace API user",
		Long: "pair hands a pairing token to the running node through its admin API. The node redeems it with " +
			"the workspace, runs the MPC key generation with the cloud co-signers (signer roles; several seconds), " +
			"creates and registers the user's approval key and the cluster's callback key, stores the sealed " +
			"records through raft and starts serving the user. --role refuses a token issued for another role.\n\n" +
			"The token is a secret until it is redeemed: give it on standard input (--token-file -) or in a file " +
			"(--token-file PATH), not with --token, which shows it to everyone who can list processes.",
		Example: "  coterie workspace create-user --data-dir ws --role both | coterie node pair --config node.yaml --token-file -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := pairingToken(cmd, tok, tokFile)
			if err != nil {
				return err
			}
			c, err := adminClient(configPath)
			if err != nil {
				return err
			}
			var info node.UserListing
			err = spin(cmd.ErrOrStderr(), "pairing (key generation takes a few seconds)", func() (err error) {
				info, err = c.Pair(cmd.Context(), node.PairRequest{Token: token, Role: role})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "paired API user %s (workspace %s, role %s)\n", info.ID, info.WorkspaceID, info.Role)
			if info.PublicKey != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "signing key      %s\n", info.PublicKey)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approval key     %s\n", info.ApprovalPublicKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	cmd.Flags().StringVar(&tokFile, "token-file", "", "read the pairing token from this file, or from standard input for -")
	cmd.Flags().StringVar(&tok, "token", "", "the pairing token itself (deprecated: visible in the process list; use --token-file)")
	cmd.Flags().StringVar(&role, "role", "", "refuse a token that is not for this role: signer, approver or both")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the paired user as JSON")
	_ = cmd.MarkFlagRequired("config")
	cmd.MarkFlagsOneRequired("token-file", "token")
	cmd.MarkFlagsMutuallyExclusive("token-file", "token")
	return cmd
}

// pairingToken returns the token from --token-file (a path, or - for
// standard input) or, with a warning, from --token.
func pairingToken(cmd *cobra.Command, tok, file string) (string, error) {
	if file == "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: --token shows the pairing token to everyone who can list processes "+
			"while the key generation runs; pass it on standard input with --token-file - or in a file with --token-file PATH")
		return strings.TrimSpace(tok), nil
	}
	return readSecret(cmd, file, "pairing token")
}

// readSecret reads a secret token (what names it in errors) as
// --token-file gives it: a path, or - for standard input.
func readSecret(cmd *cobra.Command, file, what string) (string, error) {
	r := cmd.InOrStdin()
	name := "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		defer f.Close()
		r, name = f, file
	}
	b, err := io.ReadAll(io.LimitReader(r, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("--token-file: read %s: %w", name, err)
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("--token-file: %s holds more than %d bytes, which is no %s", name, maxTokenBytes, what)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--token-file: %s holds no %s", name, what)
	}
	return token, nil
}

func newNodeUsersCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "users --config FILE [--json]",
		Short: "List the API users the running node's cluster is paired with (no secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, 30*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			users, err := c.Users(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), users)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tWORKSPACE\tROLE\tSIGNING KEY\tPAIRED")
			for _, u := range users {
				key := u.PublicKey
				if key == "" {
					key = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.WorkspaceID, u.Role, key, u.PairedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newNodePrintPublicKeyCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "print-public-key --config FILE",
		Short: "Print the cluster's callback JWT public key (PEM), for the callback handler",
		Long: "print-public-key prints the RSA public key with which every node of the cluster signs its " +
			"callback requests. Give it to the callback handler (coterie callback serve --cosigner-key FILE).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, 30*time.Second)
			if err != nil {
				return err
			}
			defer cancel()
			pem, err := c.CallbackPublicKey(ctx)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(pem)
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
