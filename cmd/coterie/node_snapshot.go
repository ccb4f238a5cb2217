package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/snapfile"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

func newNodeSnapshotCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Save and inspect snapshots of the cluster's state (ciphertext only)",
		Long: "A snapshot file holds the cluster's replicated state at one raft index: members, API users, sealed " +
			"key records, requests and presignature pools. Every secret in it is sealed under the cluster keyring, so " +
			"the file holds only ciphertext; it is signed by the node that saved it.",
	}
	cmd.AddCommand(newNodeSnapshotSaveCmd(), newNodeSnapshotInspectCmd(), newNodeSnapshotRestoreCmd())
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

// errNotConfirmed says a restore was not confirmed.
var errNotConfirmed = errors.New("restore not confirmed")

func newNodeSnapshotRestoreCmd() *cobra.Command {
	var configPath string
	var yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "restore --config FILE SNAPSHOT [--yes] [--json]",
		Short: "Restore a snapshot file onto the running cluster, after checking it and asking for confirmation",
		Long: "restore checks the file (format, checksum, signature by a member of the cluster it holds), then asks the " +
			"node (which must lead the cluster) to check it against the cluster: the same cluster id, and a keyring that " +
			"opens its records. A refusal changes nothing. It then shows what the file holds and, on a terminal, asks for " +
			"the cluster id (or yes) before it restores; off a terminal it restores only with --yes.\n\n" +
			"The snapshot is merged into the live state: the member table, join tokens, attestation policy, keyring " +
			"version and callback handlers stay live; API users, key records, requests and pools the live state lacks " +
			"come back. Every presignature live in either is burned (the snapshot's may have been used since it was " +
			"saved) and every claimed request is released to be claimed again; the pools refill by themselves.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			h, s, err := checkSnapshot(bytes.NewReader(file))
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			ctx, c, cancel, err := nodeCall(cmd, configPath, 5*time.Minute)
			if err != nil {
				return err
			}
			defer cancel()
			check, err := c.RestoreSnapshot(ctx, file, true)
			if err != nil {
				return err
			}
			if !yes {
				if err := confirmRestore(cmd, h, s, check.Report); err != nil {
					return err
				}
			}
			done, err := c.RestoreSnapshot(ctx, file, false)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), done)
			}
			r := done.Report
			fmt.Fprintf(cmd.OutOrStdout(), "restored cluster %s from index %d into index %d: %d presignatures burned, "+
				"%d requests released; %d API users, %d key records and %d requests brought back; keyring version %d\n",
				r.ClusterID, r.SnapshotIndex, r.LiveIndex, r.Burned, r.Released, r.APIUsers, r.KeyRecords, r.Requests, r.KeyringVersion)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the node's YAML config file (required)")
	cmd.Flags().BoolVar(&yes, "yes", false, "restore without asking")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the answer as JSON")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// confirmRestore shows what a restore would do and asks for the cluster
// id, or yes, on a terminal; off a terminal it refuses.
func confirmRestore(cmd *cobra.Command, h snapfile.Header, s snapfile.Summary, r cluster.RestoreReport) error {
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return fmt.Errorf("%w: not on a terminal; pass --yes to restore without asking", errNotConfirmed)
	}
	out := cmd.ErrOrStderr()
	if err := printSnapshot(out, h, s); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nThe restore will burn %d presignatures, release %d claimed requests, and bring back %d API users, "+
		"%d key records and %d requests. Members, join tokens, policy and keyring stay as they are.\n"+
		"Type the cluster id (%s) or yes to restore: ", r.Burned, r.Released, r.APIUsers, r.KeyRecords, r.Requests, h.ClusterID)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if answer := strings.TrimSpace(line); answer != h.ClusterID && answer != "yes" {
		return errNotConfirmed
	}
	return nil
}

// checkSnapshot reads a snapshot file and checks it (snapfile.Check).
func checkSnapshot(r io.Reader) (snapfile.Header, snapfile.Summary, error) {
	h, _, s, err := snapfile.Check(r)
	return h, s, err
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
	fmt.Fprintf(tw, "members\t%s\n", strings.Join(s.Members, ", "))
	fmt.Fprintf(tw, "keyring version\t%d\n", s.KeyringVersion)
	fmt.Fprintf(tw, "API users\t%d (%d key records)\n", s.APIUsers, s.KeyRecords)
	fmt.Fprintf(tw, "requests\t%s\n", counts(s.Requests))
	for _, k := range s.Keys() {
		fmt.Fprintf(tw, "pool %s\t%s\n", k, counts(s.Pools[k]))
	}
	return tw.Flush()
}

// counts writes counts by status as "completed 18, claimed 2", or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(out, ", ")
}
