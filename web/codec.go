package web

import (
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// The codec endpoint lets the Temporal UI (and `temporal workflow show --codec-endpoint`) show
// the payloads doce encrypts, to administrators only. It speaks Temporal's codec-server
// protocol: POST <endpoint>/encode and <endpoint>/decode with a Payloads message as protobuf
// JSON ({"payloads":[...]}), answered in kind. The UI calls it from its own origin with
// `credentials: include`, so it is authenticated by doce's session cookie, and CORS is opened
// to the Temporal UI's origin and no other.
//
// It is written here rather than with the SDK's converter.NewPayloadCodecHTTPHandler because
// that handler reads bodies without a limit and answers internal errors (a Vault error, say)
// verbatim.

const maxCodecBody = 4 << 20 // a page of history's payloads; far more than the API's bodies

// codecOrigin is the Temporal UI's origin (scheme://host[:port]), the only one the codec
// endpoint answers cross-origin.
func (s *Server) codecOrigin() string {
	u, err := url.Parse(s.TemporalUIURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// codecCORS answers the UI's preflight and marks responses readable by the UI's origin. A
// browser on any other origin gets no CORS headers, so it cannot read an answer; its POST is
// refused outright as well.
func (s *Server) codecCORS(c *gin.Context) {
	origin := c.GetHeader("Origin")
	allowed := s.codecOrigin()
	if origin != "" && allowed != "" && origin == allowed {
		h := c.Writer.Header()
		h.Set("Access-Control-Allow-Origin", allowed)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace")
		h.Set("Access-Control-Max-Age", "600")
		h.Add("Vary", "Origin")
		if c.Request.Method == http.MethodOptions {
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		return
	}
	if c.Request.Method == http.MethodOptions {
		c.AbortWithStatus(http.StatusNoContent) // no CORS headers: the browser stops here
		return
	}
	// Same-origin requests and clients that are no browser (the CLI) send no foreign Origin.
	if origin != "" && !sameOrigin(c.Request, origin) {
		s.fail(c, httperr.New(http.StatusForbidden, "forbidden_origin", "This origin may not use the codec endpoint. Set DOCE_TEMPORAL_UI_URL to the Temporal UI's address."))
	}
}

func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}

// requireCodecAdmin lets only a signed-in administrator through, by session cookie.
func (s *Server) requireCodecAdmin(c *gin.Context) {
	u := currentUser(c)
	switch {
	case u == nil:
		s.fail(c, httperr.New(http.StatusUnauthorized, "unauthenticated", "Sign in to doce as an administrator first."))
	case u.Role != store.RoleAdmin:
		s.fail(c, httperr.New(http.StatusForbidden, "forbidden", "Only administrators may decode workflow payloads."))
	}
}

// codec answers /codec/encode or /codec/decode: op with doce's payload codec, said as verb.
func (s *Server) codec(op func(*secrets.PayloadCodec, []*commonpb.Payload) ([]*commonpb.Payload, error), verb string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.Payloads == nil {
			s.fail(c, httperr.NotFound("page"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxCodecBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, httperr.New(http.StatusRequestEntityTooLarge, "too_large", "Send at most 4 MiB of payloads at a time."))
			return
		} else if err != nil {
			s.fail(c, err)
			return
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			s.fail(c, httperr.New(http.StatusBadRequest, "invalid", `Send a Payloads message as protobuf JSON: {"payloads":[...]}.`))
			return
		}
		out, err := op(s.Payloads, in.Payloads)
		if err != nil {
			s.Log.Warn("codec endpoint: payloads not "+verb, "error", err)
			s.fail(c, httperr.New(http.StatusBadRequest, "invalid", "These payloads could not be "+verb+" with doce's key."))
			return
		}
		b, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			s.fail(c, err)
			return
		}
		// Decoded payloads are workflow data in clear: no cache may keep them.
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusOK, "application/json", b)
	}
}
