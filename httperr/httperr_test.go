package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestFromKeepsWhatIsSafeAndHidesTheRest(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.7:5432: password authentication failed for sk-live-123")
	e := From(fmt.Errorf("store: %w", secret))
	if e.Status != http.StatusInternalServerError || e.Code != "internal" {
		t.Fatalf("an unknown error became %d %q", e.Status, e.Code)
	}
	b, _ := json.Marshal(e)
	if strings.Contains(string(b), "sk-live") || strings.Contains(e.Error(), "10.0.0.7") {
		t.Fatalf("the cause shows: %s / %s", b, e.Error())
	}
	if !errors.Is(e, secret) {
		t.Fatal("the cause is not kept for the log")
	}

	shown := Invalid("title", "Use a title of 1 to 100 characters.")
	if got := From(fmt.Errorf("rename: %w", shown)); got != shown {
		t.Fatalf("a safe error in the chain became %+v", got)
	}
	if got := From(fmt.Errorf("read: %w", context.Canceled)); got.Status != 499 {
		t.Fatalf("a canceled request became %d", got.Status)
	}
}

func TestWithCauseCopies(t *testing.T) {
	base := NotFound("project")
	cause := errors.New("no rows")
	e := base.WithCause(cause)
	if base.Unwrap() != nil || !errors.Is(e, cause) || e.Message != "No such project." {
		t.Fatalf("WithCause changed the original or lost the cause: %+v %+v", base, e)
	}
	b, _ := json.Marshal(e)
	if string(b) != `{"code":"not_found","message":"No such project."}` {
		t.Fatalf("JSON = %s", b)
	}
}
