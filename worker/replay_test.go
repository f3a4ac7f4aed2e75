package worker_test

import (
	"path/filepath"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/workflows"
)

// TestPlaintextHistoriesReplayThroughTheCodec replays the histories recorded before payloads
// were encrypted with the data and failure converters every doce client now uses: their plain
// payloads (and failures) pass through the codec untouched, so runs started before an upgrade
// carry on after it. A replay also encodes the commands it makes, which needs Vault; here those
// are left plain, so the test runs without one (e2e's TestWorkflowPayloadsEncrypted replays an
// encrypted history with the whole codec).
func TestPlaintextHistoriesReplayThroughTheCodec(t *testing.T) {
	files, err := filepath.Glob("../workflows/testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded histories: %v", err)
	}
	dc := converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), decodeOnly{secrets.NewPayloadCodec(nil)})
	fc := temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{
				DataConverter: dc, FailureConverter: fc,
			})
			if err != nil {
				t.Fatal(err)
			}
			workflows.Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", f, err)
			}
		})
	}
}

// decodeOnly is doce's codec for decoding, leaving what it would encode plain.
type decodeOnly struct{ *secrets.PayloadCodec }

func (decodeOnly) Encode(ps []*commonpb.Payload) ([]*commonpb.Payload, error) { return ps, nil }
