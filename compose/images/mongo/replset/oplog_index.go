// TEST INFRASTRUCTURE, not part of FerretDB: copied into FerretDB v1.24's
// internal/backends/sqlite/metadata by compose/images/mongo/image.sh to build the
// replica-set stand-in image snapagent-test/mongo-rs. Every capped collection's table
// gets an index on its documents' ts field, which oplog_pushdown.go's WHERE clause uses:
// the stand-in then finds a ts in its oplog as mongod does, without reading the
// entries before it.

package metadata

import "fmt"

// SnapagentTsExpr is a document's ts field as SQLite reads it from the stored JSON (a
// Timestamp is stored as its uint64 value): the indexed expression.
const SnapagentTsExpr = "json_extract(" + DefaultColumn + ", '$.ts')"

// SnapagentTsIndexName is the name of that index in a capped table.
func SnapagentTsIndexName(table string) string { return table + "_snapagent_ts" }

// snapagentTsIndex is the statement that indexes SnapagentTsExpr in a capped table.
func snapagentTsIndex(table string) string {
	return fmt.Sprintf("CREATE INDEX %q ON %q (%s)", SnapagentTsIndexName(table), table, SnapagentTsExpr)
}
