package workflows

// Bounds the tests of package workflows_test check against.
const (
	MaxSignalsPerRun = maxSignalsPerRun
	PoolRoundsPerRun = poolRoundsPerRun
)
