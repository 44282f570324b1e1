package authz

import (
	_ "embed"
	"fmt"
	"regexp"
	"strconv"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/config"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/util"
)

// modelText is the Casbin model every Authorizer enforces. Policies are
// stored, listed and reasoned about in its terms; internally the Authorizer
// spreads its one policy type over several identical ones to evaluate
// fewer rows, which changes no decision.
//
//go:embed model.conf
var modelText string

// Casbin evaluates the matcher once per policy row, about half a
// microsecond each, after a fixed cost of some ten microseconds per
// decision; with a few hundred policies the rows dominate. The enforcing
// model therefore splits the policy type into policyBuckets identical
// types (p, p2, … p32), each holding the policies of the objects and
// actions that hash to it, with a copy of the matcher that reads it. A
// decision evaluates only the bucket of its object and action: a handful
// of rows. Semantics are the embedded model's; only which rows Casbin
// scans changes. Storage always holds plain "p" rows.
const policyBuckets = 32

var (
	bucketPTypes   [policyBuckets]string
	bucketContexts [policyBuckets]casbin.EnforceContext
)

func init() {
	for i := range policyBuckets {
		suffix := ""
		if i > 0 {
			suffix = strconv.Itoa(i + 1)
		}
		bucketPTypes[i] = "p" + suffix
		// Every bucket shares the request, the effect and the role
		// definition; Casbin recognises the effect by its exact text.
		bucketContexts[i] = casbin.EnforceContext{RType: "r", PType: "p" + suffix, EType: "e", MType: "m" + suffix}
	}
}

// bucket returns the policy bucket of an object and action (FNV-1a).
func bucket(object, action string) int {
	h := uint32(2166136261)
	for i := 0; i < len(object); i++ {
		h = (h ^ uint32(object[i])) * 16777619
	}
	h *= 16777619 // a zero byte between the two, so ("ab", "c") and ("a", "bc") differ
	for i := 0; i < len(action); i++ {
		h = (h ^ uint32(action[i])) * 16777619
	}
	return int(h % policyBuckets)
}

// policyRef matches the policy type's prefix in a matcher: "p." not
// preceded by a letter, digit, underscore or dot.
var policyRef = regexp.MustCompile(`(^|[^\w.])p\.`)

// newModel parses the embedded model: one policy type, as stored.
func newModel() (model.Model, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("parse the authorization model: %w", err)
	}
	return m, nil
}

// newEnforcingModel parses the embedded model and adds the policy buckets.
func newEnforcingModel() (model.Model, error) {
	m, err := newModel()
	if err != nil {
		return nil, err
	}
	cfg, err := config.NewConfigFromText(modelText)
	if err != nil {
		return nil, fmt.Errorf("parse the authorization model: %w", err)
	}
	def := cfg.String("policy_definition::p")
	matcher := cfg.String("matchers::m")
	for i := 1; i < policyBuckets; i++ {
		pt := bucketPTypes[i]
		m.AddDef("p", pt, def)
		m.AddDef("m", bucketContexts[i].MType, policyRef.ReplaceAllString(matcher, "${1}"+pt+"."))
	}
	return m, nil
}

// newEnforcer builds an enforcer over m, an enforcing model that already
// holds every policy and grouping rule. The enforcer has no adapter: the
// Authorizer writes to storage itself, outside the lock that decisions
// take, and only then changes the enforcer.
func newEnforcer(m model.Model) (*casbin.Enforcer, error) {
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("create enforcer: %w", err)
	}
	// A grouping rule in domain "*" holds in every domain: the role
	// manager matches a request's domain against each rule's domain with
	// KeyMatch, for which "*" matches anything and a project id only
	// itself. A request in "*" therefore sees global rules only.
	if !e.AddNamedDomainMatchingFunc("g", "KeyMatch", util.KeyMatch) {
		return nil, fmt.Errorf("create enforcer: the model has no domain role manager")
	}
	if err := e.BuildRoleLinks(); err != nil {
		return nil, fmt.Errorf("build role links: %w", err)
	}
	return e, nil
}
