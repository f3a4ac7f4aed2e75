package web

import (
	"github.com/doce-dev/doce/httperr"

	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// Limits at the edge. Handlers check each field's own rules (a username's letters, a prompt's
// 20,000 characters); these only keep text the database and templates can take, so no input
// reaches a query or a page that could make it fail.
const (
	// maxBody bounds every request body, form or JSON; the largest legitimate one is a prompt.
	maxBody = 256 << 10
	// maxParam bounds a path segment: ids and provider ids are far shorter.
	maxParam = 200
	// maxQuery bounds a query value (the ops page's messages are the longest).
	maxQuery = 4096
)

// textProblem says what is wrong with s as text doce can store and show, or "".
// bun v1.3.0 turns a string holding NUL into SQL that SQLite rejects, so NUL must never pass.
func textProblem(s string, limit int) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8 text"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	case len(s) > limit:
		return fmt.Sprintf("is longer than %d bytes", limit)
	}
	return ""
}

func errInvalidText(field, where, problem string) *httperr.Error {
	return &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_text", Field: field,
		Message: fmt.Sprintf("The %s %q %s. Send printable UTF-8 text.", where, field, problem)}
}

var errTooLarge = httperr.New(http.StatusRequestEntityTooLarge, "too_large", "The request body is over 256 KiB.")

// checkInput is the one validation layer every route passes: path parameters, query values and
// form fields must be valid UTF-8 without NUL and of bounded length, and form bodies are capped
// like the API's. JSON bodies are checked where they are bound (bindJSON).
func (s *Server) checkInput(c *gin.Context) {
	for _, p := range c.Params {
		if problem := textProblem(p.Value, maxParam); problem != "" {
			s.fail(c, errInvalidText(p.Key, "address part", problem))
			return
		}
	}
	q, err := parseQuery(c.Request)
	if err != nil {
		s.fail(c, httperr.Invalid("", "The query string is malformed: "+err.Error()+"."))
		return
	}
	for k, vs := range q {
		if problem := textProblem(k, maxParam); problem != "" {
			s.fail(c, errInvalidText(truncateRunes(k, 40), "query parameter name", problem))
			return
		}
		for _, v := range vs {
			if problem := textProblem(v, maxQuery); problem != "" {
				s.fail(c, errInvalidText(k, "query parameter", problem))
				return
			}
		}
	}
	if c.Request.Body == nil || c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead {
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		err = c.Request.ParseForm()
	case "multipart/form-data":
		err = c.Request.ParseMultipartForm(maxBody)
	default:
		return // JSON or nothing: bindJSON reads it under the same cap
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, errTooLarge)
		} else {
			s.fail(c, httperr.Invalid("", "The form body is malformed."))
		}
		return
	}
	for k, vs := range c.Request.PostForm {
		for _, v := range vs {
			if problem := textProblem(k, maxParam); problem != "" {
				s.fail(c, errInvalidText(truncateRunes(k, 40), "form field name", problem))
				return
			}
			if problem := textProblem(v, maxBody); problem != "" {
				s.fail(c, errInvalidText(k, "form field", problem))
				return
			}
		}
	}
}

// parseQuery parses the query once; gin reads it again from the same URL.
func parseQuery(r *http.Request) (map[string][]string, error) {
	if r.URL.RawQuery == "" {
		return nil, nil
	}
	return url.ParseQuery(r.URL.RawQuery)
}

// checkJSONText walks a bound JSON value's strings: encoding/json replaces invalid UTF-8 but
// lets "\u0000" through.
func checkJSONText(v any) *httperr.Error {
	return walkStrings(reflect.ValueOf(v), "")
}

func walkStrings(v reflect.Value, field string) *httperr.Error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return walkStrings(v.Elem(), field)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if e := walkStrings(v.Field(i), name); e != nil {
				return e
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if e := walkStrings(v.Index(i), field); e != nil {
				return e
			}
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if e := walkStrings(it.Value(), field); e != nil {
				return e
			}
		}
	case reflect.String:
		if problem := textProblem(v.String(), maxBody); problem != "" {
			return errInvalidText(field, "field", problem)
		}
	}
	return nil
}

// echo is s when it is short enough to put back into a form, else "": a page never repeats a
// huge input.
func echo(s string, limit int) string {
	if len(s) > limit {
		return ""
	}
	return s
}

func truncateRunes(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
