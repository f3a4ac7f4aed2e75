package store

import (
	"errors"
	"testing"
)

// nodeScrypt was made by doce.dev's hashPassword (Node's crypto.scrypt) for "legacy password".
const nodeScrypt = "00112233445566778899aabbccddeeff:b22c506984b43049ab4ccc95dc0590651687da2899f098acf1858e359104ca2da48d45a07fd03a99564196b7e99023c3f16a0acb2e167a5466600f6189b8c938"

func TestCheckPassword(t *testing.T) {
	bcryptHash, err := HashPassword("a new password")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash, password string
		ok, rehash     bool
		err            error
	}{
		{bcryptHash, "a new password", true, false, nil},
		{bcryptHash, "wrong", false, false, nil},
		{LegacyScryptPrefix + nodeScrypt, "legacy password", true, true, nil},
		{LegacyScryptPrefix + nodeScrypt, "wrong", false, true, nil},
		{ResetRequired, "anything", false, false, ErrPasswordReset},
		{LegacyScryptPrefix + "zz:zz", "anything", false, false, ErrPasswordReset},
	} {
		ok, rehash, err := CheckPassword(tc.hash, tc.password)
		if ok != tc.ok || rehash != tc.rehash || !errors.Is(err, tc.err) {
			t.Errorf("CheckPassword(%.20q…, %q) = %v, %v, %v; want %v, %v, %v", tc.hash, tc.password, ok, rehash, err, tc.ok, tc.rehash, tc.err)
		}
	}
}
