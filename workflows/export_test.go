package workflows

// Bounds the tests of package workflows_test check against.
const (
	MaxSignalsPerRun = maxSignalsPerRun
	PoolRoundsPerRun = poolRoundsPerRun
)

// PlaceAttempts is how often a setup tries to place its project before it stops for an
// operator.
var PlaceAttempts = int(placeOpts.RetryPolicy.MaximumAttempts)
