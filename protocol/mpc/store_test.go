package mpc_test

import (
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/presigntest"
)

func TestMemPresignStoreContract(t *testing.T) {
	presigntest.Run(t, func(*testing.T) mpc.PresignStore { return mpc.NewMemPresignStore() })
}
