package oauthtest

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"
)

// handleGitHubDeviceCode is the RFC 8628 device authorization endpoint at
// GitHub's path. Like GitHub it accepts a JSON body as well as a form. Errors
// (unknown client, disallowed scope) keep fosite's RFC status codes: the
// 200-for-errors quirk is GitHub's token endpoint behaviour, and
// golang.org/x/oauth2's DeviceAuth only recognises errors by a non-2xx status.
func (s *Server) handleGitHubDeviceCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := jsonBodyToForm(r); err != nil {
		s.provider.WriteAccessError(ctx, w, nil, err)
		return
	}
	d, resp, err := s.newDevice(ctx, r)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code":               d.deviceCode,
		"user_code":                 d.userCode,
		"verification_uri":          s.url + "/login/device",
		"verification_uri_complete": s.url + "/login/device?user_code=" + url.QueryEscape(d.userCode),
		"expires_in":                resp.GetExpiresIn(),
		"interval":                  s.interval,
	})
}

// handleGitHubToken is the token endpoint at GitHub's path for the device_code
// and refresh_token grants.
//
// GitHub quirk, reproduced on purpose: GitHub answers OAuth errors
// (authorization_pending, slow_down, expired_token, access_denied,
// incorrect_device_code, bad_refresh_token, ...) with HTTP 200 and a JSON
// body {"error": ..., "error_description": ..., "interval": N (slow_down
// only)}. A client that decides success by status code alone breaks on the
// real service, so this server does the same. The error codes themselves are
// fosite's RFC 6749/8628 names (an unknown device code or a bad refresh token
// is "invalid_grant", where GitHub says incorrect_device_code or
// bad_refresh_token).
func (s *Server) handleGitHubToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := jsonBodyToForm(r); err != nil {
		s.writeGitHubTokenError(w, err)
		return
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		s.writeGitHubTokenError(w, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeGitHubTokenError(w, err)
		return
	}
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

func (s *Server) writeGitHubTokenError(w http.ResponseWriter, err error) {
	rfc := fosite.ErrorToRFC6749Error(err).WithExposeDebug(true)
	body := map[string]any{
		"error":             rfc.ErrorField,
		"error_description": rfc.GetDescription(),
	}
	if rfc.ErrorField == "slow_down" {
		// RFC 8628 §3.5: the client adds 5s. GitHub reports the new
		// interval; the server itself keeps enforcing PollInterval only.
		body["interval"] = s.interval + 5
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

var devicePage = template.Must(template.New("device").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Device activation</title></head>
<body>
<h1>Device activation</h1>
{{if .Message}}<p id="message">{{.Message}}</p>{{end}}
<form method="post" action="/login/device">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" value="{{.UserCode}}" autocomplete="off">
<button type="submit" name="action" value="approve" id="approve">Approve</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form>
</body></html>
`))

type devicePageData struct {
	UserCode string
	Message  string
}

// handleDevicePage serves the verification page: a plain form, no
// JavaScript, so a browser-driven test can play the user.
func (s *Server) handleDevicePage(w http.ResponseWriter, r *http.Request) {
	renderDevicePage(w, http.StatusOK, devicePageData{UserCode: r.URL.Query().Get("user_code")})
}

// handleDeviceDecision is the form target of the verification page; it calls
// Approve or Deny. The resulting page says "Device approved." or "Device
// denied." (status 200), or the error (status 400).
func (s *Server) handleDeviceDecision(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		renderDevicePage(w, http.StatusBadRequest, devicePageData{Message: err.Error()})
		return
	}
	code := r.PostForm.Get("user_code")
	var err error
	msg := ""
	switch r.PostForm.Get("action") {
	case "approve":
		err, msg = s.Approve(code), "Device approved."
	case "deny":
		err, msg = s.Deny(code), "Device denied."
	default:
		err = fmt.Errorf("action must be approve or deny")
	}
	if err != nil {
		renderDevicePage(w, http.StatusBadRequest, devicePageData{UserCode: code, Message: err.Error()})
		return
	}
	renderDevicePage(w, http.StatusOK, devicePageData{Message: msg})
}

func renderDevicePage(w http.ResponseWriter, status int, data devicePageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = devicePage.Execute(w, data)
}

// jsonBodyToForm rewrites a JSON object body into an
// application/x-www-form-urlencoded one, because fosite only reads forms
// while GitHub (and OpenAI's Codex client on refresh) send JSON. Other
// content types are left alone.
func jsonBodyToForm(r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		return nil
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return fosite.ErrInvalidRequest.WithHint("Unable to parse the JSON body.").WithWrap(err).WithDebug(err.Error())
	}
	v := url.Values{}
	for k, val := range m {
		switch x := val.(type) {
		case string:
			v.Set(k, x)
		case json.Number, bool:
			v.Set(k, fmt.Sprint(x))
		}
	}
	body := v.Encode()
	r.Body = io.NopCloser(strings.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vv := range v {
		out[k] = append([]string(nil), vv...)
	}
	return out
}
