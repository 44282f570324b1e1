package standin

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorCodeAndMessage(t *testing.T) {
	t.Parallel()
	cause := errors.New("socket closed")
	tests := []struct {
		name    string
		err     error
		code    string
		message string
	}{
		{"Nil", nil, "", ""},
		{"Coded", Errorf(ENotFound, "No user %s.", "x"), ENotFound, "No user x."},
		{"Wrapped", fmt.Errorf("find user: %w", Errorf(EConflict, "Taken.")), EConflict, "Taken."},
		{"WithCause", &Error{Code: EUnavailable, Message: "Down.", Cause: cause}, EUnavailable, "Down."},
		{"Plain", cause, EInternal, "An internal error occurred."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ErrorCode(tt.err); got != tt.code {
				t.Errorf("ErrorCode = %q, want %q", got, tt.code)
			}
			if got := ErrorMessage(tt.err); got != tt.message {
				t.Errorf("ErrorMessage = %q, want %q", got, tt.message)
			}
		})
	}
	withCause := &Error{Code: EUnavailable, Message: "Down.", Cause: cause}
	if !errors.Is(withCause, cause) {
		t.Error("an Error does not unwrap to its cause")
	}
}

func TestRoleRank(t *testing.T) {
	t.Parallel()
	if !(RoleUser.Rank() < RoleSupport.Rank() && RoleSupport.Rank() < RoleManager.Rank() &&
		RoleManager.Rank() < RoleAdmin.Rank() && RoleAdmin.Rank() < RoleOwner.Rank()) {
		t.Fatal("roles are not ranked user < support < manager < admin < owner")
	}
	if Role("root").Rank() != -1 || Role("root").Valid() {
		t.Fatal("an unknown role has a rank")
	}
}
