package callback

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // problems the error must mention; none: valid
	}{
		{name: "approve everything", yaml: "{}"},
		{name: "unquoted numbers", yaml: "transactions:\n  maxAmount:\n    BTC: 0.5\n    ETH: 20\nretry:\n  - times: 1\n    amount: 0.0042\n"},
		{name: "mixed-case actions", yaml: "configChanges:\n  ADD_USER: Reject\n  EXCHANGE: IGNORE\n  \"*\": approve\n"},
		{name: "empty file", yaml: "", want: []string{"empty"}},
		{name: "comment only", yaml: "# nothing\n", want: []string{"empty"}},
		{name: "not yaml", yaml: "transactions: [", want: []string{"policy"}},
		{name: "unknown key", yaml: "transaction:\n  maxAmount: {}\n", want: []string{"transaction"}},
		{name: "unknown nested key", yaml: "transactions:\n  maxAmounts: {}\n", want: []string{"maxAmounts"}},
		{name: "bad amounts", yaml: "transactions:\n  maxAmount:\n    BTC: \"-1\"\n    ETH: \"1e3\"\n    SOL: \"1/3\"\n",
			want: []string{"maxAmount[BTC]", "maxAmount[ETH]", "maxAmount[SOL]"}},
		{name: "empty asset and address", yaml: "transactions:\n  maxAmount:\n    \"\": \"1\"\n  allowedDestinations: [\"\"]\n",
			want: []string{"empty asset", "allowedDestinations[0]"}},
		{name: "bad config change", yaml: "configChanges:\n  ADD_USERS: approve\n  EXCHANGE: retry\n  FIAT_ACCOUNT: maybe\n",
			want: []string{"unknown type \"ADD_USERS\"", "configChanges[EXCHANGE]", "configChanges[FIAT_ACCOUNT]"}},
		{name: "bad retry rules", yaml: "retry:\n  - times: 0\n  - times: 1\n    amount: abc\n  - times: 1\n    configType: NOPE\n  - times: 1\n    noteContains: x\n    configType: ADD_USER\n",
			want: []string{"retry[0]: times 0", "retry[1]: amount", "retry[2]: unknown configType", "retry[3]: configType cannot be combined"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.yaml))
			if len(tc.want) == 0 {
				if err != nil || p == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := ParsePolicy(make([]byte, maxPolicyBytes+1)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("huge policy: %v", err)
	}
	var nilPolicy *Policy
	if err := nilPolicy.Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil policy: %v", err)
	}
}

func TestExamplePolicyLoads(t *testing.T) {
	p, err := LoadPolicy("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Retry) != 3 || p.Transactions.MaxAmount["BTC"] != "0.5" {
		t.Fatalf("policy %+v", p)
	}
	if _, err := LoadPolicy("testdata/missing.yaml"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPolicyEvaluate(t *testing.T) {
	p, err := LoadPolicy("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, errs := p.compile()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	const okBTC, okETH = "bc1qexampleallowedaddress0000000000000000", "0x00000000000000000000000000000000000000a1"
	tx := func(asset, amount, dest string, more ...string) *TxRequest {
		r := &TxRequest{RequestID: "r", Asset: asset, AmountStr: amount, DestAddress: dest}
		for _, d := range more {
			r.Destinations = append(r.Destinations, Destination{DestAddress: d, AmountNativeStr: "0.1"})
		}
		return r
	}
	// withDest is an ETH transaction of 1 to one allowed destination whose
	// amount is str and num.
	withDest := func(str string, num *float64) *TxRequest {
		r := tx("ETH", "1", "")
		r.Destinations = []Destination{{DestAddress: okETH, AmountNativeStr: str, AmountNative: num}}
		return r
	}
	tests := []struct {
		name   string
		req    Request
		want   Action
		reason string // substring
	}{
		{"within limit", tx("BTC", "0.5", okBTC), ActionApprove, ""},
		{"over limit", tx("BTC", "0.50000001", okBTC), ActionReject, "exceeds the maximum"},
		{"wildcard asset within", tx("SOL", "999.99", okBTC), ActionApprove, ""},
		{"wildcard asset over", tx("SOL", "1000.01", okBTC), ActionReject, "exceeds"},
		{"float amount only", &TxRequest{RequestID: "r", Asset: "ETH", Amount: num(0.1), DestAddress: okETH}, ActionApprove, ""},
		{"float amount over", &TxRequest{RequestID: "r", Asset: "ETH", Amount: num(20.5), DestAddress: okETH}, ActionReject, "exceeds"},
		{"negative amount", &TxRequest{RequestID: "r", Asset: "ETH", Amount: num(-1), DestAddress: okETH}, ActionReject, "non-negative"},
		{"amountStr garbage", tx("BTC", "lots", okBTC), ActionReject, "non-negative"},
		{"amount absent", &TxRequest{RequestID: "r", Asset: "ETH", DestAddress: okETH}, ActionReject, "amount is absent"},
		{"destination amount within", withDest("20", nil), ActionApprove, ""},
		{"destination float amount within", withDest("", num(2)), ActionApprove, ""},
		{"destination amount over", withDest("20.5", nil), ActionReject, "destinations[0] amount 20.5 ETH exceeds the maximum 20"},
		{"destination float amount over", withDest("", num(1e6)), ActionReject, "destinations[0] amount 1000000 ETH exceeds"},
		{"destination amount absent", withDest("", nil), ActionReject, "destinations[0] amount is absent"},
		{"destination amount garbage", withDest("lots", num(1)), ActionReject, "destinations[0] amount is not a non-negative decimal"},
		{"destination amount negative", withDest("", num(-5)), ActionReject, "non-negative"},
		{"destination not listed", tx("BTC", "0.1", "bc1qattacker"), ActionReject, "not on the allowlist"},
		{"one of many destinations not listed", tx("ETH", "1", okETH, okBTC, "0xevil"), ActionReject, "0xevil"},
		{"all destinations listed", tx("ETH", "1", "", okETH, okBTC), ActionApprove, ""},
		{"no destination at all", tx("ETH", "1", ""), ActionReject, "no destination"},
		{"config approved", testConfig("c", ConfigExchange), ActionApprove, ""},
		{"config rejected", testConfig("c", ConfigAddUser), ActionReject, "ADD_USER"},
		{"config ignored", testConfig("c", ConfigChangeQuorumThreshold), ActionIgnore, ""},
		{"config by wildcard", testConfig("c", ConfigReEnrollDevice), ActionApprove, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, reason := c.evaluate(tc.req)
			if a != tc.want || !strings.Contains(reason, tc.reason) || (a == ActionReject) != (reason != "") {
				t.Fatalf("evaluate = %s %q; want %s %q", a, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		req  Request
		want Action
	}{
		{"empty policy approves transactions", "{}", testTx("a"), ActionApprove},
		{"empty policy approves config changes", "{}", testConfig("a", ConfigAddUser), ActionApprove},
		{"listed assets only", "transactions: {maxAmount: {ETH: '1'}}", testTx("a"), ActionReject},
		{"listed types only", "configChanges: {EXCHANGE: approve}", testConfig("a", ConfigAddUser), ActionReject},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			c, _ := p.compile()
			if a, reason := c.evaluate(tc.req); a != tc.want {
				t.Fatalf("evaluate = %s %q, want %s", a, reason, tc.want)
			}
		})
	}
}

func TestRetryRuleMatches(t *testing.T) {
	p, err := ParsePolicy([]byte(`
retry:
  - {times: 1, noteContains: please-retry}
  - {times: 2, asset: BTC, amount: "0.0042"}
  - {times: 1, configType: ENABLE_ONE_TIME_ADDRESS}
  - {times: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.compile()
	noted := testTx("a")
	noted.Note = "x please-retry y"
	exact := &TxRequest{RequestID: "a", Asset: "BTC", Amount: num(0.0042)}
	exactStr := &TxRequest{RequestID: "a", Asset: "BTC", AmountStr: "0.00420"}
	otherAsset := &TxRequest{RequestID: "a", Asset: "ETH", AmountStr: "0.0042"}
	tests := []struct {
		name string
		req  Request
		want []bool // per rule
	}{
		{"note", noted, []bool{true, false, false, true}},
		{"amount as number", exact, []bool{false, true, false, true}},
		{"amount as string with trailing zero", exactStr, []bool{false, true, false, true}},
		{"other asset", otherAsset, []bool{false, false, false, true}},
		{"config type", testConfig("a", ConfigEnableOneTimeAddress), []bool{false, false, true, true}},
		{"other config type", testConfig("a", ConfigAddUser), []bool{false, false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range c.retry {
				if got := c.retry[i].matches(tc.req); got != tc.want[i] {
					t.Errorf("rule %d matches = %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestDecimalString(t *testing.T) {
	for in, want := range map[string]string{"0.75": "0.75", "10": "10", "10.000": "10", "0.0000000000000000000000000000000000000001": "0.0000000000000000000000000000000000000001", "0": "0"} {
		v, ok := parseDecimal(in)
		if !ok || decimalString(v) != want {
			t.Errorf("decimalString(%s) = %s, %v; want %s", in, decimalString(v), ok, want)
		}
	}
}
