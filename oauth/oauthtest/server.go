// Package oauthtest runs a local OAuth 2.0 authorization server for tests.
//
// It stands in for the two providers doce signs users in to, so that client
// code can be exercised end to end on loopback without real accounts:
//
//   - a GitHub-shaped server (GitHub.com and GitHub Enterprise use the same
//     paths): RFC 8628 device authorization grant and refresh_token grant,
//     including GitHub's habit of answering token endpoint errors with
//     HTTP 200 (see [Server] and the route list below);
//   - an OpenAI-shaped server (the ChatGPT "headless" device login as
//     OpenCode 1.18.33 performs it, with this server's URL as issuer).
//
// The OAuth machinery is ory/fosite composed with an in-memory store and
// HMAC token strategies, so token issuance, refresh-token rotation (with
// reuse detection) and RFC 7009 revocation behave like a real server rather
// than like hand-written fakes. The "user" is played by the test through
// [Server.Approve] and [Server.Deny], or by a browser through the HTML page
// at /login/device.
//
// Routes (all relative to [Server.URL]):
//
//	GitHub-shaped
//	  POST /login/device/code          device authorization (form or JSON body)
//	  POST /login/oauth/access_token   token endpoint: device_code and refresh_token
//	                                   grants; OAuth errors are answered with HTTP 200
//	  GET  /login/device               HTML page to approve/deny a user code
//	  POST /login/device               form target of that page
//	OpenAI-shaped
//	  POST /api/accounts/deviceauth/usercode  {"client_id"} -> device_auth_id, user_code, interval
//	  POST /api/accounts/deviceauth/token     {"device_auth_id","user_code"} -> 403 pending,
//	                                          400 denied/expired, 200 authorization_code+code_verifier
//	  POST /oauth/token                authorization_code (stashed device result) and refresh_token
//	  POST /oauth/revoke               RFC 7009 revocation
//	  GET  /codex/device               same HTML page as /login/device
package oauthtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/rfc8628"
	"github.com/ory/fosite/storage"
)

// Options configures a Server. The zero value of every field selects a default.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0" (loopback, random
	// port). Tests that must be reachable from a container may pass e.g.
	// "172.17.0.1:0". If the host part is unspecified ("0.0.0.0", "::" or
	// empty), URL() uses 127.0.0.1.
	Addr string

	// ClientIDs are the OAuth client IDs the server accepts. Each is a public
	// client (no secret, token_endpoint_auth_method "none") allowed the
	// device_code, refresh_token and authorization_code grants and the
	// scopes "read:user", "openid", "profile", "email" and "offline_access".
	// At least one is required, so a test states which client ID the
	// doce under test is configured with.
	ClientIDs []string

	// AccessTokenLifespan is the access token lifetime, reported as
	// expires_in; default 1h. Use a few seconds to exercise refresh. Note
	// that golang.org/x/oauth2 considers a token expired 10s before its
	// expiry, so a lifespan under 10s makes every TokenSource.Token() call
	// refresh.
	AccessTokenLifespan time.Duration

	// DeviceCodeLifespan is how long a device code (and its user code) stays
	// valid; default 10m. fosite rounds the expiry to a whole second.
	DeviceCodeLifespan time.Duration

	// PollInterval is the device-flow polling interval; default 1s. It is
	// passed to fosite as Config.DeviceAuthTokenPollingInterval, but RFC 8628
	// advertises the interval in whole seconds and fosite would truncate a
	// sub-second value to 0 (which clients read as "use 5s"), so the server
	// advertises ceil(PollInterval) seconds, at least 1, in the "interval"
	// fields. slow_down is decided on the exact PollInterval: a poll for the
	// same device code arriving less than 80% of PollInterval after the
	// previous one (the slack absorbs timer jitter) is answered slow_down.
	PollInterval time.Duration
}

// Server is a running test authorization server. It is safe for concurrent
// use. Create it with New or Start.
type Server struct {
	url      string
	srv      *http.Server
	ln       net.Listener
	provider fosite.OAuth2Provider
	store    *storage.MemoryStore
	devStrat *deviceStrategy
	core     *oauth2.HMACSHAStrategy
	secret   []byte // HMAC global secret, also signs id_tokens (HS256)

	atLifespan time.Duration
	interval   int           // advertised polling interval, whole seconds
	minPollGap time.Duration // polls closer than this get slow_down
	closeOnce  sync.Once
	closeErr   error
	decideMu   sync.Mutex         // serialises Approve/Deny (read-copy-write of the device request)
	mu         sync.Mutex         // guards everything below
	devices    map[string]*device // by normalised user code
	bySig      map[string]*device // by device code signature
	byAuthID   map[string]*device // by OpenAI device_auth_id
	order      []*device          // creation order, for Pending
	codes      map[string]*codeGrant
	requests   map[string]int
	users      int // approvals so far; names subjects and account IDs
	slowDowns  int // device polls still to answer slow_down whatever their pace
}

// device is the server-side record of one device authorization. fosite keeps
// the authoritative state (pending/accepted/rejected) in its store; this
// record holds what fosite does not let us look up: the device code
// signature for a user code, the raw device code for the OpenAI flow (whose
// client never sees it), the expiry and the last poll time.
type device struct {
	userCode   string
	deviceCode string
	deviceSig  string
	clientID   string
	authID     string // OpenAI device_auth_id, "" for GitHub-shaped devices
	expiresAt  time.Time
	lastPoll   time.Time
}

// codeGrant is a token response obtained through an approved OpenAI device
// authorization, parked under a one-time authorization code until the client
// redeems it at /oauth/token.
type codeGrant struct {
	clientID  string
	verifier  string
	tokens    map[string]any
	subject   string
	accountID string
	expiresAt time.Time
}

// Session extra key for the ChatGPT account ID put into id_tokens.
const accountIDKey = "chatgpt_account_id"

// New starts a server listening on opts.Addr and returns once it accepts
// connections.
func New(opts Options) (*Server, error) {
	if len(opts.ClientIDs) == 0 {
		return nil, errors.New("oauthtest: Options.ClientIDs is empty")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.AccessTokenLifespan <= 0 {
		opts.AccessTokenLifespan = time.Hour
	}
	if opts.DeviceCodeLifespan <= 0 {
		opts.DeviceCodeLifespan = 10 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oauthtest: listen: %w", err)
	}
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("oauthtest: listen address: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}

	s := &Server{
		url:        "http://" + net.JoinHostPort(host, port),
		ln:         ln,
		secret:     make([]byte, 32),
		atLifespan: opts.AccessTokenLifespan,
		interval:   max(1, int((opts.PollInterval+time.Second-1)/time.Second)),
		minPollGap: opts.PollInterval * 8 / 10,
		devices:    map[string]*device{},
		bySig:      map[string]*device{},
		byAuthID:   map[string]*device{},
		codes:      map[string]*codeGrant{},
		requests:   map[string]int{},
	}
	if _, err := rand.Read(s.secret); err != nil {
		ln.Close()
		return nil, err
	}

	cfg := &fosite.Config{
		AccessTokenLifespan:            opts.AccessTokenLifespan,
		DeviceAndUserCodeLifespan:      opts.DeviceCodeLifespan,
		DeviceAuthTokenPollingInterval: opts.PollInterval,
		DeviceVerificationURL:          s.url + "/login/device",
		GlobalSecret:                   s.secret,
		// nil would mean "only grants with offline/offline_access get refresh
		// tokens"; GitHub-shaped clients ask for "read:user" and still get one.
		RefreshTokenScopes: []string{},
		// Error descriptions carry fosite's debug text: this is a test server.
		SendDebugMessagesToClients: true,
	}

	s.store = storage.NewMemoryStore()
	for _, id := range opts.ClientIDs {
		s.store.Clients[id] = &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            id,
				Public:        true,
				RedirectURIs:  []string{s.url + "/deviceauth/callback"},
				GrantTypes:    []string{string(fosite.GrantTypeDeviceCode), "refresh_token", "authorization_code"},
				ResponseTypes: []string{"code"},
				Scopes:        []string{"read:user", "openid", "profile", "email", "offline_access"},
			},
			TokenEndpointAuthMethod: "none",
		}
	}

	s.core = compose.NewOAuth2HMACStrategy(cfg)
	s.devStrat = &deviceStrategy{DefaultDeviceStrategy: compose.NewDeviceStrategy(cfg), s: s}
	s.provider = compose.Compose(cfg, s.store,
		&compose.CommonStrategy{CoreStrategy: s.core, RFC8628CodeStrategy: s.devStrat},
		compose.RFC8628DeviceFactory,
		compose.RFC8628DeviceAuthorizationTokenFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenRevocationFactory,
	)

	mux := http.NewServeMux()
	// GitHub-shaped.
	mux.HandleFunc("POST /login/device/code", s.handleGitHubDeviceCode)
	mux.HandleFunc("POST /login/oauth/access_token", s.handleGitHubToken)
	mux.HandleFunc("GET /login/device", s.handleDevicePage)
	mux.HandleFunc("POST /login/device", s.handleDeviceDecision)
	// OpenAI-shaped.
	mux.HandleFunc("POST /api/accounts/deviceauth/usercode", s.handleOpenAIUserCode)
	mux.HandleFunc("POST /api/accounts/deviceauth/token", s.handleOpenAIDeviceToken)
	mux.HandleFunc("POST /oauth/token", s.handleOpenAIToken)
	mux.HandleFunc("POST /oauth/revoke", s.handleRevoke)
	mux.HandleFunc("GET /codex/device", s.handleDevicePage)

	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests[r.URL.Path]++
			s.mu.Unlock()
			mux.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// The listener already accepts connections (they queue in the backlog),
	// so the server is ready as soon as New returns.
	go s.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return s, nil
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234", without a
// trailing slash. It is also the OpenAI-shaped issuer.
func (s *Server) URL() string { return s.url }

// Close stops the server immediately, dropping in-flight requests. It is
// safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.srv.Close()
	})
	return s.closeErr
}

// Requests reports how many requests have hit path (any method, any
// outcome), e.g. "/login/oauth/access_token", to assert poll or refresh
// counts.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Pending returns the user codes that are still waiting for a decision and
// have not expired, oldest first, so a test can find the code a client
// displayed without scraping it.
func (s *Server) Pending() []string {
	s.mu.Lock()
	devs := slices.Clone(s.order)
	s.mu.Unlock()

	ctx := context.Background()
	now := time.Now()
	var out []string
	for _, d := range devs {
		if now.After(d.expiresAt) {
			continue
		}
		req, err := s.lookupUserCode(ctx, d.userCode)
		if err == nil && req.GetUserCodeState() == fosite.UserCodeUnused {
			out = append(out, d.userCode)
		}
	}
	return out
}

// Approve plays the user approving userCode: the device request is marked
// fosite.UserCodeAccepted, all requested scopes (and audiences) are granted,
// and the session gets a subject "user-<n>" and ChatGPT account ID
// "acct-test-<n>". The next token poll for the device code then issues
// tokens. userCode is matched case-insensitively, ignoring '-' and spaces.
func (s *Server) Approve(userCode string) error { return s.decide(userCode, true) }

// Deny plays the user rejecting userCode (fosite.UserCodeRejected); the
// token endpoint then answers access_denied.
func (s *Server) Deny(userCode string) error { return s.decide(userCode, false) }

func (s *Server) decide(userCode string, approve bool) error {
	code := normalizeUserCode(userCode)
	s.mu.Lock()
	d := s.devices[code]
	s.mu.Unlock()
	if d == nil {
		return fmt.Errorf("oauthtest: unknown user code %q", userCode)
	}
	if time.Now().After(d.expiresAt) {
		return fmt.Errorf("oauthtest: user code %q expired at %s", userCode, d.expiresAt.Format(time.RFC3339))
	}

	s.decideMu.Lock()
	defer s.decideMu.Unlock()
	ctx := context.Background()
	req, err := s.lookupUserCode(ctx, code)
	if err != nil {
		return fmt.Errorf("oauthtest: user code %q: %w", userCode, err)
	}
	if st := req.GetUserCodeState(); st != fosite.UserCodeUnused {
		return fmt.Errorf("oauthtest: user code %q was already decided (state %d)", userCode, st)
	}
	orig, ok := req.(*fosite.DeviceRequest)
	if !ok {
		return fmt.Errorf("oauthtest: unexpected device request type %T", req)
	}

	// The memory store hands out the stored pointer and token polls read it
	// concurrently, so never mutate it in place: file an updated copy under
	// both signatures instead (CreateDeviceAuthSession replaces both under
	// the store's lock).
	cp := *orig
	cp.Form = cloneValues(orig.Form)
	cp.RequestedScope = slices.Clone(orig.RequestedScope)
	cp.GrantedScope = slices.Clone(orig.GrantedScope)
	cp.RequestedAudience = slices.Clone(orig.RequestedAudience)
	cp.GrantedAudience = slices.Clone(orig.GrantedAudience)
	sess, ok := orig.GetSession().Clone().(*fosite.DefaultSession)
	if !ok {
		return fmt.Errorf("oauthtest: unexpected session type %T", orig.GetSession())
	}
	cp.Session = sess
	if approve {
		s.mu.Lock()
		s.users++
		n := s.users
		s.mu.Unlock()
		// The token endpoint copies granted scopes/audience from this request
		// and the session (subject included) into the issued tokens; it does
		// not grant anything by itself.
		for _, sc := range cp.GetRequestedScopes() {
			cp.GrantScope(sc)
		}
		for _, aud := range cp.GetRequestedAudience() {
			cp.GrantAudience(aud)
		}
		sess.Subject = "user-" + strconv.Itoa(n)
		sess.Username = sess.Subject
		if sess.Extra == nil {
			sess.Extra = map[string]any{}
		}
		sess.Extra[accountIDKey] = "acct-test-" + strconv.Itoa(n)
		cp.SetUserCodeState(fosite.UserCodeAccepted)
	} else {
		cp.SetUserCodeState(fosite.UserCodeRejected)
	}
	userSig, err := s.devStrat.UserCodeSignature(ctx, code)
	if err != nil {
		return err
	}
	return s.store.CreateDeviceAuthSession(ctx, d.deviceSig, userSig, &cp)
}

// lookupUserCode finds the device request by user code. fosite's memory
// store files a device request under both the device-code signature and the
// user-code signature (CreateDeviceAuthSession), so the user-code signature
// computed by the same device strategy finds it.
func (s *Server) lookupUserCode(ctx context.Context, userCode string) (fosite.DeviceRequester, error) {
	sig, err := s.devStrat.UserCodeSignature(ctx, userCode)
	if err != nil {
		return nil, err
	}
	return s.store.GetDeviceCodeSession(ctx, sig, nil)
}

// RevokeRefreshToken plays the user revoking the grant behind refreshToken
// (e.g. in the provider's settings page): the newest refresh token of that
// grant and its access token are revoked, so refreshing with refreshToken,
// or with any token rotated from it, answers invalid_grant.
func (s *Server) RevokeRefreshToken(refreshToken string) error {
	ctx := context.Background()
	sig := s.core.RefreshTokenSignature(ctx, refreshToken)
	req, err := s.store.GetRefreshTokenSession(ctx, sig, nil)
	if err != nil && !errors.Is(err, fosite.ErrInactiveToken) {
		return fmt.Errorf("oauthtest: unknown refresh token: %w", err)
	}
	// The memory store keys revocation by request ID, which every token of a
	// rotation chain shares; it deactivates the chain's newest refresh token.
	if err := s.store.RevokeRefreshToken(ctx, req.GetID()); err != nil {
		return err
	}
	return s.store.RevokeAccessToken(ctx, req.GetID())
}

// SlowDown makes the next n device-code polls answer slow_down, as a busy server would.
func (s *Server) SlowDown(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowDowns = n
}

// ActiveAccessToken reports whether token is an access token this server issued that is
// neither expired nor revoked: what a resource server would accept.
func (s *Server) ActiveAccessToken(token string) bool {
	ctx := context.Background()
	req, err := s.store.GetAccessTokenSession(ctx, s.core.AccessTokenSignature(ctx, token), nil)
	if err != nil {
		return false
	}
	exp := req.GetSession().GetExpiresAt(fosite.AccessToken)
	return exp.IsZero() || time.Now().Before(exp)
}

// newDevice runs fosite's device authorization for r (a form POST carrying
// client_id and scope) and records the result.
func (s *Server) newDevice(ctx context.Context, r *http.Request) (*device, fosite.DeviceResponder, error) {
	dr, err := s.provider.NewDeviceRequest(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	sess := &fosite.DefaultSession{Extra: map[string]any{}}
	resp, err := s.provider.NewDeviceResponse(ctx, dr, sess)
	if err != nil {
		return nil, nil, err
	}
	sig, err := s.devStrat.DeviceCodeSignature(ctx, resp.GetDeviceCode())
	if err != nil {
		return nil, nil, err
	}
	d := &device{
		userCode:   resp.GetUserCode(),
		deviceCode: resp.GetDeviceCode(),
		deviceSig:  sig,
		clientID:   dr.GetClient().GetID(),
		// Read before anyone but us knows the codes: later, fosite's token
		// handler writes to this session while issuing tokens.
		expiresAt: sess.GetExpiresAt(fosite.DeviceCode),
	}
	s.mu.Lock()
	s.devices[normalizeUserCode(d.userCode)] = d
	s.bySig[sig] = d
	s.order = append(s.order, d)
	s.mu.Unlock()
	return d, resp, nil
}

// noRateLimitKey marks internal token exchanges (the OpenAI-shaped poll
// endpoint) that must not be subjected to the device-code slow_down rule.
type noRateLimitKey struct{}

// deviceStrategy is fosite's default RFC 8628 strategy with a real
// ShouldRateLimit. fosite's DefaultDeviceStrategy.ShouldRateLimit always
// answers false, so without this the server never says slow_down.
type deviceStrategy struct {
	*rfc8628.DefaultDeviceStrategy
	s *Server
}

// ShouldRateLimit is the first thing fosite's device_code token handler
// consults, before it looks at the user-code state. Besides rate limiting it
// reports expiry: fosite checks the user-code state before the device code's
// expiry, so an expired code nobody approved would otherwise answer
// authorization_pending forever instead of expired_token.
func (ds *deviceStrategy) ShouldRateLimit(ctx context.Context, code string) (bool, error) {
	sig, err := ds.DeviceCodeSignature(ctx, code)
	if err != nil {
		return false, err
	}
	now := time.Now()
	ds.s.mu.Lock()
	defer ds.s.mu.Unlock()
	d := ds.s.bySig[sig]
	if d == nil {
		return false, nil // fosite answers invalid_grant for unknown codes
	}
	if now.After(d.expiresAt) {
		return false, fosite.ErrDeviceExpiredToken.WithHintf("Device code expired at '%s'.", d.expiresAt.Format(time.RFC3339))
	}
	if ctx.Value(noRateLimitKey{}) != nil {
		return false, nil
	}
	last := d.lastPoll
	d.lastPoll = now
	if ds.s.slowDowns > 0 {
		ds.s.slowDowns--
		return true, nil
	}
	return !last.IsZero() && now.Sub(last) < ds.s.minPollGap, nil
}

// normalizeUserCode lets people (and tests) type "abcd-efgh" for the
// "ABCDEFGH" fosite generated.
func normalizeUserCode(c string) string {
	c = strings.ToUpper(c)
	return strings.NewReplacer("-", "", " ", "").Replace(c)
}

func randomString(nBytes int) string {
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}
