package standin

import "context"

// Principal is who a request acts for. Actor is the person signed in;
// Subject is the effective identity whose permissions apply. They are the
// same user unless the actor is impersonating the subject.
type Principal struct {
	Actor         *User
	Subject       *User
	Session       *Session
	Impersonation *Impersonation // nil unless impersonating
}

// Impersonating reports whether the actor acts as someone else.
func (p *Principal) Impersonating() bool {
	return p.Actor != nil && p.Subject != nil && p.Actor.ID != p.Subject.ID
}

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, or nil when the request is
// anonymous.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
