// TEST INFRASTRUCTURE, not part of FerretDB: copied into FerretDB v1.24's
// internal/backends/sqlite by compose/images/mongo/image.sh to build the replica-set
// stand-in image snapagent-test/mongo-rs. mongod finds the start of a ts range of the
// oplog without reading the entries before it (the oplog's record ids are its
// timestamps); FerretDB v1's SQLite backend pushes down only an _id equality and
// decodes every row of a collection for any other filter, so each read of the newest
// oplog entries (`{ts: {$gte: T}}`, what oplog tailers and mongodump --oplog send)
// costs a decode of the whole oplog: seconds per read on an oplog of 100,000 entries.
// This pushes such a filter down to SQL on capped collections, as a superset: the rows
// whose stored ts compares as asked (a Timestamp is stored as its uint64 value), found
// through the index oplog_index.go adds, which FerretDB's own filter then checks again,
// so the results do not change, only the rows read.

package sqlite

import (
	"fmt"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/types"
)

// snapagentOplogWhere returns a WHERE clause and its arguments for a filter that is
// exactly {ts: {<$gt|$gte|$lt|$lte>: Timestamp, ...}}, or "" and nil for any other. The
// clause starts with INDEXED BY: without statistics SQLite prefers reading the table in
// record-id order (the ORDER BY) to the index.
func snapagentOplogWhere(table string, filter *types.Document) (string, []any) {
	if filter.Len() != 1 {
		return "", nil
	}

	v, err := filter.Get("ts")
	if err != nil {
		return "", nil
	}

	ops, ok := v.(*types.Document)
	if !ok || ops.Len() == 0 {
		return "", nil
	}

	var conds []string
	var args []any

	for _, op := range ops.Keys() {
		sqlOp := map[string]string{"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]

		x, _ := ops.Get(op)
		ts, ok := x.(types.Timestamp)
		if sqlOp == "" || !ok || int64(ts) < 0 {
			return "", nil
		}

		conds = append(conds, fmt.Sprintf("%s %s ?", metadata.SnapagentTsExpr, sqlOp))
		args = append(args, int64(ts))
	}

	where := fmt.Sprintf(" INDEXED BY %q WHERE %s", metadata.SnapagentTsIndexName(table), conds[0])
	for _, c := range conds[1:] {
		where += " AND " + c
	}

	return where, args
}
