package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"standin/server/standin"
)

func TestMountRefusesUndeclaredRoute(t *testing.T) {
	t.Parallel()
	a := &API{log: slog.New(slog.DiscardHandler)}
	app := fiber.New()
	err := a.mount(app, []route{{method: fiber.MethodGet, path: "/api/v1/open", handler: func(*fiber.Ctx) error { return nil }}})
	if err == nil || !strings.Contains(err.Error(), "declares no access rule") {
		t.Fatalf("mount = %v, want a refusal", err)
	}
}

func TestEveryRouteDeclaresAccess(t *testing.T) {
	t.Parallel()
	a := &API{}
	for _, r := range a.routes() {
		if r.access == undeclared {
			t.Errorf("%s %s declares no access rule", r.method, r.path)
		}
	}
}

func TestPanicBecomesOpaque500(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	a := &API{log: slog.New(slog.NewTextHandler(&logs, nil))}
	app := fiber.New(fiber.Config{ErrorHandler: errorHandler(a.log)})
	app.Use(a.recoverPanic)
	if err := a.mount(app, []route{{fiber.MethodGet, "/boom", public, rule{}, func(*fiber.Ctx) error {
		panic("secret detail")
	}}}); err != nil {
		t.Fatal(err)
	}
	res, err := app.Test(httptest.NewRequest(http.MethodGet, "/boom", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d", res.StatusCode)
	}
	if strings.Contains(string(body), "secret") {
		t.Fatalf("the panic leaked into the response: %s", body)
	}
	var got errorBody
	if err := json.Unmarshal(body, &got); err != nil || got.Error.Code != standin.EInternal || got.Error.Message != "internal error" {
		t.Fatalf("body %s (%v)", body, err)
	}
	if !strings.Contains(logs.String(), "secret detail") {
		t.Fatal("the panic was not logged")
	}
}

func TestErrorResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"Coded", standin.Errorf(standin.ENotFound, "No such user."), 404, standin.ENotFound, "No such user."},
		{"WithReason", &standin.Error{Code: standin.EForbidden, Message: "Denied.", Reason: "missing Confocal Basics"}, 403, standin.EForbidden, "Denied."},
		{"Unavailable", &standin.Error{Code: standin.EUnavailable, Message: "Down.", Cause: errors.New("dial tcp: refused")}, 503, standin.EUnavailable, "Down."},
		{"PlainErrorIsOpaque", errors.New("mongo: secret"), 500, standin.EInternal, "internal error"},
		{"UnknownCodeIsOpaque", &standin.Error{Code: "made_up", Message: "leak"}, 500, standin.EInternal, "internal error"},
		{"FiberNotFound", fiber.ErrNotFound, 404, standin.ENotFound, "There is nothing at this address."},
		{"FiberTooLarge", fiber.ErrRequestEntityTooLarge, 413, standin.ETooLarge, "The request body is too large."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, status := errorResponse(tt.err)
			if status != tt.status || body.Error.Code != tt.code || body.Error.Message != tt.msg {
				t.Fatalf("got %d %+v", status, body)
			}
		})
	}
	body, _ := errorResponse(&standin.Error{Code: standin.EForbidden, Message: "Denied.", Reason: "missing Confocal Basics"})
	if body.Error.Reason != "missing Confocal Basics" {
		t.Fatalf("reason dropped: %+v", body)
	}
}

func TestStatusTableCoversEveryCode(t *testing.T) {
	t.Parallel()
	for _, code := range standin.Codes() {
		if _, ok := statusOf[code]; !ok {
			t.Errorf("no HTTP status for %q", code)
		}
	}
	if len(statusOf) != len(standin.Codes()) {
		t.Errorf("the status table has %d codes, standin.Codes %d", len(statusOf), len(standin.Codes()))
	}
}
