package callback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Policy is the reference server's rule set, read from YAML. The format,
// with every key optional:
//
//	transactions:
//	  maxAmount:            # per-asset maximum amount, inclusive, as a decimal,
//	    BTC: "0.5"          # of the amount and of each destination's amount;
//	    "*": "100"          # an absent amount is rejected. "*" applies to assets
//	                        # not listed; when the map is not empty, an asset
//	                        # matching no key is rejected
//	  allowedDestinations:  # when not empty, destAddress and every
//	    - "bc1q..."         # destinations[].dstAddress must be listed (exact match)
//	configChanges:          # approve, reject or ignore, per type; "*" for the
//	  ADD_USER: reject      # types not listed. When the map is not empty, a type
//	  "*": approve          # matching no key is rejected. Empty: all approved.
//	retry:                  # answer RETRY to the first `times` requests with
//	  - times: 1            # the same requestId that match every condition
//	    noteContains: "x"   # given: noteContains, asset, amount (transactions),
//	                        # configType (config changes). No condition: all.
//
// A transaction passing every check is approved. Evaluation order: retry
// rules (first match), then amount, then destinations. Action names are
// case-insensitive.
type Policy struct {
	Transactions  TxPolicy          `yaml:"transactions"`
	ConfigChanges map[string]string `yaml:"configChanges"`
	Retry         []RetryRule       `yaml:"retry"`
}

// TxPolicy holds the rules for transactions.
type TxPolicy struct {
	// MaxAmount maps an asset (or "*") to its maximum amount.
	MaxAmount map[string]string `yaml:"maxAmount"`
	// AllowedDestinations lists the destination addresses allowed.
	AllowedDestinations []string `yaml:"allowedDestinations"`
}

// RetryRule answers RETRY, for testing retries. Conditions left empty are
// not checked; a rule with transaction conditions never matches a config
// change, and the other way round.
type RetryRule struct {
	// Times is how many times the rule answers RETRY for one requestId.
	Times int `yaml:"times"`
	// NoteContains matches a transaction whose note contains it.
	NoteContains string `yaml:"noteContains"`
	// Asset matches a transaction of that asset.
	Asset string `yaml:"asset"`
	// Amount matches a transaction of exactly that amount (a decimal).
	Amount string `yaml:"amount"`
	// ConfigType matches a config change of that type, such as ADD_USER.
	ConfigType string `yaml:"configType"`
}

// maxPolicyBytes bounds a policy file.
const maxPolicyBytes = 1 << 20

// ParsePolicy decodes a YAML policy and validates it. Unknown keys are
// errors, so that a misspelt rule is not silently ignored.
func ParsePolicy(data []byte) (*Policy, error) {
	if len(data) > maxPolicyBytes {
		return nil, fmt.Errorf("%w: policy larger than %d bytes", ErrInvalidConfig, maxPolicyBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: policy is empty (write {} to approve everything)", ErrInvalidConfig)
		}
		return nil, fmt.Errorf("%w: policy: %v", ErrInvalidConfig, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadPolicy reads and parses a policy file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return ParsePolicy(data)
}

// Validate reports every problem of p at once, wrapped in
// ErrInvalidConfig.
func (p *Policy) Validate() error {
	if _, errs := p.compile(); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
	}
	return nil
}

// decimalRE is the amount syntax: no sign, no exponent, no fraction bar.
var decimalRE = regexp.MustCompile(`^[0-9]{1,40}(\.[0-9]{1,40})?$`)

func parseDecimal(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if !decimalRE.MatchString(s) {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// decimalString formats a value parseDecimal made, which has at most 40
// fraction digits, exactly and without trailing zeros.
func decimalString(v *big.Rat) string {
	s := v.FloatString(40)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// compiledPolicy is a validated Policy in the form evaluation needs.
type compiledPolicy struct {
	maxAmount map[string]*big.Rat // nil: no limits
	allowed   map[string]bool     // nil: any destination
	config    map[string]Action   // keyed by type name or "*"; nil: all approved
	retry     []retryRule
}

type retryRule struct {
	times      int
	kind       Kind // 0: either kind
	note       string
	asset      string
	amount     *big.Rat
	configType ConfigChangeType
}

// compile returns the compiled policy, or every problem found.
func (p *Policy) compile() (*compiledPolicy, []error) {
	if p == nil {
		return nil, []error{errors.New("no policy")}
	}
	var errs []error
	c := &compiledPolicy{}
	if len(p.Transactions.MaxAmount) > 0 {
		c.maxAmount = make(map[string]*big.Rat, len(p.Transactions.MaxAmount))
		for asset, s := range p.Transactions.MaxAmount {
			v, ok := parseDecimal(s)
			if asset == "" {
				errs = append(errs, errors.New("transactions.maxAmount: empty asset name"))
			}
			if !ok {
				errs = append(errs, fmt.Errorf("transactions.maxAmount[%s]: %q is not a decimal amount", asset, s))
				continue
			}
			c.maxAmount[asset] = v
		}
	}
	if len(p.Transactions.AllowedDestinations) > 0 {
		c.allowed = make(map[string]bool, len(p.Transactions.AllowedDestinations))
		for i, a := range p.Transactions.AllowedDestinations {
			if a == "" {
				errs = append(errs, fmt.Errorf("transactions.allowedDestinations[%d]: empty address", i))
			}
			c.allowed[a] = true
		}
	}
	if len(p.ConfigChanges) > 0 {
		c.config = make(map[string]Action, len(p.ConfigChanges))
		for name, s := range p.ConfigChanges {
			if _, err := ParseConfigChangeType(name); err != nil && name != "*" {
				errs = append(errs, fmt.Errorf("configChanges: unknown type %q", name))
			}
			a, err := parseActionFold(s)
			if err != nil || a == ActionRetry {
				errs = append(errs, fmt.Errorf("configChanges[%s]: %q is not approve, reject or ignore", name, s))
				continue
			}
			c.config[name] = a
		}
	}
	for i, r := range p.Retry {
		rule, problems := compileRetryRule(r)
		for _, e := range problems {
			errs = append(errs, fmt.Errorf("retry[%d]: %w", i, e))
		}
		c.retry = append(c.retry, rule)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func compileRetryRule(r RetryRule) (retryRule, []error) {
	var errs []error
	rule := retryRule{times: r.Times, note: r.NoteContains, asset: r.Asset}
	if r.Times < 1 || r.Times > maxAttemptsLimit {
		errs = append(errs, fmt.Errorf("times %d not in [1, %d]", r.Times, maxAttemptsLimit))
	}
	if r.Amount != "" {
		v, ok := parseDecimal(r.Amount)
		if !ok {
			errs = append(errs, fmt.Errorf("amount %q is not a decimal amount", r.Amount))
		}
		rule.amount = v
	}
	txCond := r.NoteContains != "" || r.Asset != "" || r.Amount != ""
	if txCond {
		rule.kind = KindTransaction
	}
	if r.ConfigType != "" {
		t, err := ParseConfigChangeType(r.ConfigType)
		if err != nil {
			errs = append(errs, fmt.Errorf("unknown configType %q", r.ConfigType))
		}
		rule.configType = t
		if txCond {
			errs = append(errs, errors.New("configType cannot be combined with transaction conditions"))
		}
		rule.kind = KindConfigChange
	}
	return rule, errs
}

// matches reports whether the rule's conditions hold for req.
func (r *retryRule) matches(req Request) bool {
	if r.kind != 0 && r.kind != req.Kind() {
		return false
	}
	switch q := req.(type) {
	case *TxRequest:
		if r.note != "" && !strings.Contains(q.Note, r.note) {
			return false
		}
		if r.asset != "" && q.Asset != r.asset {
			return false
		}
		if r.amount != nil {
			v, err := exactAmount(q.AmountStr, q.Amount)
			return err == nil && v.Cmp(r.amount) == 0
		}
		return true
	case *ConfigChangeRequest:
		return r.configType == 0 || q.Type == r.configType
	default:
		return false
	}
}

// errNoAmount means a request gave neither form of an amount.
var errNoAmount = errors.New("absent")

// exactAmount is an amount as an exact decimal: the string form, or the
// shortest decimal that round-trips the number when the string is empty.
// It fails with errNoAmount when both are absent, so that a missing
// amount never reads as zero, and when the amount is not a non-negative
// decimal.
func exactAmount(str string, num *float64) (*big.Rat, error) {
	switch {
	case str != "":
		if v, ok := parseDecimal(str); ok {
			return v, nil
		}
	case num == nil:
		return nil, errNoAmount
	case *num >= 0 && finite(*num):
		if v, ok := parseDecimal(strconv.FormatFloat(*num, 'f', -1, 64)); ok {
			return v, nil
		}
	}
	return nil, errors.New("not a non-negative decimal")
}

// evaluate applies the policy's static rules (everything but retry) to
// req.
func (c *compiledPolicy) evaluate(req Request) (Action, string) {
	switch q := req.(type) {
	case *TxRequest:
		return c.evaluateTx(q)
	case *ConfigChangeRequest:
		return c.evaluateConfig(q)
	default:
		return ActionReject, "unknown request kind"
	}
}

func (c *compiledPolicy) evaluateTx(r *TxRequest) (Action, string) {
	if c.maxAmount != nil {
		if a, reason := c.checkAmounts(r); a != ActionApprove {
			return a, reason
		}
	}
	if c.allowed != nil {
		var addrs []string
		if r.DestAddress != "" {
			addrs = append(addrs, r.DestAddress)
		}
		for _, d := range r.Destinations {
			if d.DestAddress != "" {
				addrs = append(addrs, d.DestAddress)
			}
		}
		if len(addrs) == 0 {
			return ActionReject, "no destination address to check against the allowlist"
		}
		for _, a := range addrs {
			if !c.allowed[a] {
				return ActionReject, fmt.Sprintf("destination %s is not on the allowlist", truncate(a, 128))
			}
		}
	}
	return ActionApprove, ""
}

// checkAmounts holds the transaction's amount and each destination's
// amount to the asset's maximum. An amount that is absent or not a
// decimal fails the check: a limit is never passed by a missing value.
func (c *compiledPolicy) checkAmounts(r *TxRequest) (Action, string) {
	limit, ok := c.maxAmount[r.Asset]
	if !ok {
		limit, ok = c.maxAmount["*"]
	}
	if !ok {
		return ActionReject, fmt.Sprintf("asset %s is not allowed by policy", truncate(r.Asset, 32))
	}
	check := func(what, str string, num *float64) (Action, string) {
		amount, err := exactAmount(str, num)
		if err != nil {
			return ActionReject, fmt.Sprintf("%s is %v, so the maximum amount cannot be checked", what, err)
		}
		if amount.Cmp(limit) > 0 {
			return ActionReject, fmt.Sprintf("%s %s %s exceeds the maximum %s",
				what, decimalString(amount), truncate(r.Asset, 32), decimalString(limit))
		}
		return ActionApprove, ""
	}
	if a, reason := check("amount", r.AmountStr, r.Amount); a != ActionApprove {
		return a, reason
	}
	for i, d := range r.Destinations {
		if a, reason := check(fmt.Sprintf("destinations[%d] amount", i), d.AmountNativeStr, d.AmountNative); a != ActionApprove {
			return a, reason
		}
	}
	return ActionApprove, ""
}

func (c *compiledPolicy) evaluateConfig(r *ConfigChangeRequest) (Action, string) {
	if c.config == nil {
		return ActionApprove, ""
	}
	a, ok := c.config[r.Type.String()]
	if !ok {
		a, ok = c.config["*"]
	}
	switch {
	case !ok:
		return ActionReject, fmt.Sprintf("config-change type %s is not allowed by policy", r.Type)
	case a == ActionReject:
		return ActionReject, fmt.Sprintf("policy rejects config-change type %s", r.Type)
	default:
		return a, ""
	}
}
