package activities

import (
	"context"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/workspace"
)

// The interfaces below are what the activities use of Vault and the workspace backend, so each
// can run in a test without either; secrets.Transit and a workspace.Backend are the real ones
// the worker injects.

// Decrypter opens a ciphertext bound to a Transit context; a ciphertext Vault refuses for that
// context is secrets.ErrUndecryptable.
type Decrypter interface {
	Decrypt(ctx context.Context, ciphertext, keyContext string) ([]byte, error)
}

// Cipher seals and opens secrets bound to a Transit context.
type Cipher interface {
	Decrypter
	Encrypt(ctx context.Context, plaintext []byte, keyContext string) (ciphertext string, version int, err error)
}

// KeyRewrapper moves ciphertexts to the newest key version inside Vault and retires the older
// versions.
type KeyRewrapper interface {
	Info(ctx context.Context) (secrets.KeyInfo, error)
	Rewrap(ctx context.Context, items []secrets.Sealed) ([]string, error)
	SetMinDecryptionVersion(ctx context.Context, v int) error
}

// Containers makes, stops and removes workspace containers (the Docker and Pool activities).
type Containers interface {
	Up(ctx context.Context, s workspace.Spec) (workspace.Workspace, error)
	Stop(ctx context.Context, projectID string) error
	Down(ctx context.Context, projectID string) error
	Inspect(ctx context.Context, projectID string) (workspace.Container, error)
	PooledIDs(ctx context.Context, owner string) ([]string, error)
}

// Workspaces is what the OpenCode activities ask of a project's workspace: whether it runs and
// accepts on its published port, a start and stop around a credential removal or a lost port,
// and the configuration of a prebuilt one.
type Workspaces interface {
	Inspect(ctx context.Context, projectID string) (workspace.Container, error)
	Accepts(ctx context.Context, projectID string, hostPort int) error
	Start(ctx context.Context, projectID string) (workspace.Workspace, error)
	Stop(ctx context.Context, projectID string) error
	Pooled(ctx context.Context, projectID string) (pooled bool, configSum string, err error)
	ClaimCPU(ctx context.Context, projectID string) error
	ReplaceConfig(ctx context.Context, projectID string, replaceable func(now []byte) bool, to []byte) (now []byte, replaced bool, err error)
}

// The real ones satisfy them.
var (
	_ Cipher       = (*secrets.Transit)(nil)
	_ KeyRewrapper = (*secrets.Transit)(nil)
	_ Containers   = workspace.Backend(nil)
	_ Workspaces   = workspace.Backend(nil)
	_ Trees        = workspace.Backend(nil)
)
