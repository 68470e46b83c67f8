package sqlstore

// TestMigration is a migration a test adds beyond SchemaVersion.
type TestMigration = testMigration

// WithMigrations returns cfg with the tests' migrations added: the binary
// then knows their versions too.
func WithMigrations(cfg MigrateConfig, ms ...TestMigration) MigrateConfig {
	cfg.extra = append(cfg.extra, ms...)
	return cfg
}

// ContractFloor reads a SQL migration's contract mark.
var ContractFloor = contractFloor
