package impersonation

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"standin/server/standin"
)

// Summary is what was done in a user's name during one impersonation:
// every change and every refusal, each oldest first. Views are left out:
// they changed nothing, and the activity log keeps them for staff.
type Summary struct {
	Impersonation *standin.Impersonation
	Changes       []*standin.Event
	Refusals      []*standin.Event
}

// summaryPage and summaryMax bound the reading of one session's events:
// pages of summaryPage, at most summaryMax events in all.
const (
	summaryPage = 500
	summaryMax  = 10000
)

// Summary returns the summary of impersonation id for who: the user it
// was about, or someone who may see it (CanSee). ENotFound for an unknown
// id and for anyone else, so its existence is not revealed.
func (s *Service) Summary(ctx context.Context, who *standin.User, id string) (*Summary, error) {
	imp, err := s.Get(ctx, who, id)
	if err != nil {
		return nil, err
	}
	return s.summarize(ctx, imp)
}

// summarize reads imp's events, newest first, and sorts them into changes
// and refusals.
func (s *Service) summarize(ctx context.Context, imp *standin.Impersonation) (*Summary, error) {
	out := &Summary{Impersonation: imp}
	page := standin.Page{Limit: summaryPage}
	for read := 0; read < summaryMax; {
		evs, next, err := s.audit.Query(ctx, standin.EventFilter{ImpersonationID: imp.ID}, page)
		if err != nil {
			return nil, fmt.Errorf("read the events of impersonation %s: %w", imp.ID, err)
		}
		read += len(evs)
		for _, e := range evs {
			switch {
			case e.Type == standin.EventActionDenied:
				out.Refusals = append(out.Refusals, e)
			case changes(e.Type):
				out.Changes = append(out.Changes, e)
			}
		}
		if next == "" || len(evs) == 0 {
			break
		}
		page.Cursor = next
	}
	slices.Reverse(out.Changes)
	slices.Reverse(out.Refusals)
	return out, nil
}

// changes reports whether events of type typ record a change: anything
// but a decision (action.*), the session's own request, start and end,
// and sign-ins.
func changes(typ string) bool {
	for _, prefix := range []string{"action.", "impersonation.", "request.", "auth."} {
		if strings.HasPrefix(typ, prefix) {
			return false
		}
	}
	return true
}

// Words says the summary's counts to the user: "In your name: 1 change
// and 2 refusals."
func (sum *Summary) Words() string {
	return fmt.Sprintf("In your name: %s and %s.", counted(len(sum.Changes), "change"), counted(len(sum.Refusals), "refusal"))
}

func counted(n int, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	default:
		return fmt.Sprintf("%d %ss", n, what)
	}
}
