package forges

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/doce-dev/doce/outbound"
)

// checkTimeout bounds the whole check: a forge that has not said who the token is by then is
// taken as unreachable.
const checkTimeout = 15 * time.Second

// Check asks the forge of kind at baseURL (as Normalize returned it) whose token this is,
// through hc. Every way it can fail is a *FieldError fit to show: the token refused, the
// address refused by the outbound policy, nothing or no forge answering there.
func Check(ctx context.Context, kind, baseURL, token string, hc *http.Client) (Account, error) {
	f, err := Open(kind, baseURL, token, hc)
	if err != nil {
		return Account{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	acct, err := f.Me(ctx)
	switch {
	case err == nil:
		return acct, nil
	case errors.Is(err, ErrUnauthorized):
		return Account{}, &FieldError{"token", Name(kind) + " at " + baseURL + " refused this token: check that it is current and may read your user (GitHub: a classic token or a fine-grained one; GitLab: scope read_user or api; Gitea: scope read:user or all)."}
	case errors.Is(err, ErrNotForge):
		return Account{}, &FieldError{"baseURL", "No " + Name(kind) + " API answered at " + baseURL + ". Check the address and the kind of forge."}
	case outbound.Refused(err):
		return Account{}, &FieldError{"baseURL", outbound.RefusedMessage}
	case errors.Is(ctx.Err(), context.Canceled):
		return Account{}, err // the caller went away
	}
	return Account{}, &FieldError{"baseURL", "Could not reach " + Name(kind) + " at " + host(baseURL) + ": nothing answered in time, or the connection failed. Check the address."}
}

func host(baseURL string) string {
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return baseURL
}
