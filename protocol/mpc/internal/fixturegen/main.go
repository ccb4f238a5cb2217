package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
)

type setup struct {
	name      string
	parties   []mpc.PartyID
	threshold int
	presigs   [][]mpc.PartyID // signer sets of the presignatures to include
}

var setups = []setup{
	{"2of2", []mpc.PartyID{"a", "b"}, 1, [][]mpc.PartyID{{"a", "b"}, {"a", "b"}, {"a", "b"}}},
	{"2of3", []mpc.PartyID{"a", "b", "c"}, 1, nil},
	{"3of3", []mpc.PartyID{"a", "b", "c"}, 2, [][]mpc.PartyID{{"a", "b", "c"}}},
}

func main() {
	dir := flag.String("dir", "testdata", "directory to write the fixtures into")
	flag.Parse()
	cfg := mpc.DefaultConfig()
	eng, err := mpc.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range setups {
		f, err := generate(eng, s)
		if err != nil {
			log.Fatalf("%s: %v", s.name, err)
		}
		path := filepath.Join(*dir, filepath.Base(mpctest.FixturePath(s.name)))
		if err := f.Write(path); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	}
}

func generate(eng *mpc.Engine, s setup) (*mpctest.File, error) {
	ctx := context.Background()
	sid := func() []byte {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return b
	}
	keygenID := sid()
	kg, err := mpctest.Start(s.parties, func(id mpc.PartyID) (*mpc.Session[*mpc.KeyShare], error) {
		return eng.Keygen(mpc.Params{SessionID: keygenID, Self: id, Parties: s.parties, Threshold: s.threshold})
	})
	if err != nil {
		return nil, err
	}
	if _, err := mpctest.Run(ctx, mpctest.Machines(kg), mpctest.Options{}); err != nil {
		return nil, err
	}
	f := &mpctest.File{Threshold: s.threshold, Shares: map[string][]byte{}}
	shares := map[mpc.PartyID]*mpc.KeyShare{}
	for id, sess := range kg {
		k, err := sess.Result()
		if err != nil {
			return nil, fmt.Errorf("keygen %s: %w", id, err)
		}
		shares[id] = k
		if f.Shares[string(id)], err = k.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	for _, signers := range s.presigs {
		presignID := sid()
		ps, err := mpctest.Start(signers, func(id mpc.PartyID) (*mpc.Session[*mpc.Presignature], error) {
			return eng.Presign(mpc.Params{SessionID: presignID, Self: id, Parties: signers, Threshold: s.threshold}, shares[id])
		})
		if err != nil {
			return nil, err
		}
		if _, err := mpctest.Run(ctx, mpctest.Machines(ps), mpctest.Options{}); err != nil {
			return nil, err
		}
		set := map[string][]byte{}
		for id, sess := range ps {
			p, err := sess.Result()
			if err != nil {
				return nil, fmt.Errorf("presign %s: %w", id, err)
			}
			if set[string(id)], err = p.MarshalBinary(); err != nil {
				return nil, err
			}
		}
		f.Presignatures = append(f.Presignatures, set)
	}
	return f, nil
}
