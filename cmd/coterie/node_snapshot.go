package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coterie-mpc/coterie/cluster/snapfile"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

// errNotAMember says a snapshot file was signed by a key outside the
// member table it holds.
var errNotAMember = errors.New("snapshot signed by a key that is not a member of the cluster it holds")

func newNodeSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save and inspect snapshots of the cluster's state (ciphertext only)",
		Long: "A snapshot file holds the cluster's replicated state at one raft index: members, API users, sealed " +
			"key records, requests and presignature pools. Every secret in it is sealed under the cluster keyring, so " +
			"the file holds only ciphertext; it is signed by the node that saved it.",
	}
	cmd.AddCommand(newNodeSnapshotSaveCmd(), newNodeSnapshotInspectCmd())
	return cmd
}

func newNodeSnapshotSaveCmd() *cobra.Command {
	var configPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "save --config FILE OUT [--json]",
		Short: "Write the running node's snapshot of the cluster state to OUT (mode 0600), checked before it is written",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, c, cancel, err := nodeCall(cmd, configPath, 5*time.Minute)
			if err != nil {
				return err
			}
			defer cancel()
			var buf bytes.Buffer
			if err := c.SaveSnapshot(ctx, &buf); err != nil {
				return err
			}
			h, s, err := checkSnapshot(bytes.NewReader(buf.Bytes()))
			if err != nil {
				return fmt.Errorf("the node sent a snapshot that does not check: %w", err)
			}
			if err := atomicfile.Write(args[0], buf.Bytes(), 0o600); err != nil {
				return err
			}
			if asJSON {
				return printSnapshotJSON(cmd.OutOrStdout(), h, s)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "saved cluster %s at index %d from %s (%d members, %d API users, %d bytes) to %s\n",
				h.ClusterID, h.Index, s.Signer, len(s.Members), s.APIUsers, buf.Len(), args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the saved file's header and summary as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func newNodeSnapshotInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE [--json]",
		Short: "Check a snapshot file (format, checksum, signature by a member) and summarise it, decrypting nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, s, err := checkSnapshot(f)
			if err != nil {
				return err
			}
			if asJSON {
				return printSnapshotJSON(cmd.OutOrStdout(), h, s)
			}
			return printSnapshot(cmd.OutOrStdout(), h, s)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// checkSnapshot reads a snapshot file, checks it (snapfile.Read, then that
// a member of the cluster it holds signed it) and summarises it.
func checkSnapshot(r io.Reader) (snapfile.Header, snapfile.Summary, error) {
	h, state, err := snapfile.Read(r)
	if err != nil {
		return h, snapfile.Summary{}, err
	}
	s, err := snapfile.Summarize(state, h.IdentityKey)
	switch {
	case err != nil:
		return h, s, fmt.Errorf("snapshot state: %w", err)
	case s.Signer == "":
		return h, s, fmt.Errorf("%w (key %s)", errNotAMember, h.IdentityKey)
	case s.ClusterID != h.ClusterID || s.AppliedIndex != h.Index:
		return h, s, fmt.Errorf("the header names cluster %s at index %d, the state is cluster %s at index %d", h.ClusterID, h.Index, s.ClusterID, s.AppliedIndex)
	}
	return h, s, nil
}

func printSnapshotJSON(w io.Writer, h snapfile.Header, s snapfile.Summary) error {
	return printJSON(w, struct {
		Header  snapfile.Header  `json:"header"`
		Summary snapfile.Summary `json:"summary"`
	}{h, s})
}

func printSnapshot(w io.Writer, h snapfile.Header, s snapfile.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "cluster\t%s\n", h.ClusterID)
	fmt.Fprintf(tw, "index\t%d\n", h.Index)
	fmt.Fprintf(tw, "saved\t%s by %s\n", h.SavedAt.Format(time.RFC3339), s.Signer)
	fmt.Fprintf(tw, "members\t%v\n", s.Members)
	fmt.Fprintf(tw, "keyring version\t%d\n", s.KeyringVersion)
	fmt.Fprintf(tw, "API users\t%d (%d key records)\n", s.APIUsers, s.KeyRecords)
	fmt.Fprintf(tw, "requests\t%v\n", s.Requests)
	for _, k := range s.Keys() {
		fmt.Fprintf(tw, "pool %s\t%v\n", k, s.Pools[k])
	}
	return tw.Flush()
}
