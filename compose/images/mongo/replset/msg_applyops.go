// TEST INFRASTRUCTURE, not part of FerretDB: copied into FerretDB v1.24's
// internal/handler by compose/images/mongo/image.sh (build_mongo) to build the
// replica-set stand-in image snapagent-test/mongo-rs. FerretDB v1 records
// inserts/updates/deletes in local.oplog.rs but has no `applyOps`, so
// `mongorestore --oplogReplay` cannot replay them; this is the small subset of MongoDB's
// `applyOps` that replay needs, built on FerretDB's own insert/update/delete handlers:
//   - "i": an insert; if the _id exists, an upsert of the whole document by _id
//     (MongoDB's applyOps turns an insert of an existing _id into a replacement, which
//     makes replay over a live dump idempotent). The insert comes first because it is
//     an index probe, where FerretDB's upsert scans the collection for any _id that is
//     not a string or an ObjectID;
//   - "u": o2 selects the document, o is a replacement or {$v: 1, <modifiers>} (FerretDB
//     logs every update as {$v: 1, $set: <whole document>}), applied as an upsert;
//     $v: 2 (MongoDB 5's diff format) is refused;
//   - "d": deletes the document o selects (one; none is not an error);
//   - "n": a no-op.
// Commands ("c": DDL, nested applyOps, transactions) are refused: FerretDB's oplog
// never holds them. Entries apply in order; the first failure stops the command.

package handler

import (
	"context"
	"fmt"
	"strings"

	"github.com/FerretDB/wire"

	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/handlererrors"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// MsgApplyOps implements the subset of `applyOps` described above.
func (h *Handler) MsgApplyOps(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
	document, err := opMsgDocument(msg)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	ops, err := common.GetRequiredParam[*types.Array](document, "applyOps")
	if err != nil {
		return nil, err
	}

	results := types.MakeArray(ops.Len())

	for i := 0; i < ops.Len(); i++ {
		v := must.NotFail(ops.Get(i))

		op, ok := v.(*types.Document)
		if !ok {
			return nil, applyOpsError(i, "an entry is not a document")
		}

		if err = h.applyOp(connCtx, op); err != nil {
			return nil, applyOpsError(i, err.Error())
		}

		results.Append(true)
	}

	return documentOpMsg(must.NotFail(types.NewDocument(
		"applied", int32(ops.Len()),
		"results", results,
		"ok", float64(1),
	)))
}

func applyOpsError(i int, msg string) error {
	return handlererrors.NewCommandErrorMsg(
		handlererrors.ErrBadValue,
		fmt.Sprintf("applyOps (snapagent test stand-in) entry %d: %s", i, msg),
	)
}

// applyOp applies one oplog entry through FerretDB's own write handlers.
func (h *Handler) applyOp(ctx context.Context, op *types.Document) error {
	kind, _ := op.Get("op")
	if kind == "n" {
		return nil
	}

	ns, _ := op.Get("ns")
	nsString, _ := ns.(string)

	dbName, collName, ok := strings.Cut(nsString, ".")
	if !ok || dbName == "" || collName == "" {
		return fmt.Errorf("ns %q is not <database>.<collection>", nsString)
	}

	o, _ := op.Get("o")

	obj, ok := o.(*types.Document)
	if !ok {
		return fmt.Errorf("o is not a document")
	}

	var cmd *types.Document

	switch kind {
	case "i":
		id, err := obj.Get("_id")
		if err != nil {
			return fmt.Errorf("an insert without _id")
		}

		cmd = must.NotFail(types.NewDocument(
			"insert", collName,
			"documents", must.NotFail(types.NewArray(obj)),
			"ordered", true,
			"$db", dbName,
		))

		err = h.runWrite(ctx, cmd)
		if err == nil || !strings.Contains(err.Error(), "E11000") {
			return err
		}

		cmd = updateCommand(dbName, collName, must.NotFail(types.NewDocument("_id", id)), obj)

	case "u":
		o2, _ := op.Get("o2")

		query, ok := o2.(*types.Document)
		if !ok {
			return fmt.Errorf("an update without o2")
		}

		update := obj.DeepCopy()

		if version, err := update.Get("$v"); err == nil {
			if types.Compare(version, int32(1)) != types.Equal {
				return fmt.Errorf("update format $v: %v is not supported by this test stand-in (only $v: 1 modifiers and replacements)", version)
			}

			update.Remove("$v")
		}

		// $set of an unchanged _id is allowed by MongoDB, refused by FerretDB.
		if set, err := update.Get("$set"); err == nil {
			if setDoc, ok := set.(*types.Document); ok {
				setDoc.Remove("_id")

				if setDoc.Len() == 0 {
					update.Remove("$set")
				}
			}
		}

		if update.Len() == 0 {
			return nil
		}

		cmd = updateCommand(dbName, collName, query, update)

	case "d":
		cmd = must.NotFail(types.NewDocument(
			"delete", collName,
			"deletes", must.NotFail(types.NewArray(must.NotFail(types.NewDocument("q", obj, "limit", int32(1))))),
			"ordered", true,
			"$db", dbName,
		))

	default:
		return fmt.Errorf("op %v is not supported by this test stand-in (only i, u, d and n)", kind)
	}

	return h.runWrite(ctx, cmd)
}

// runWrite runs an insert, update or delete command through FerretDB's handler; a write
// error is returned as an error.
func (h *Handler) runWrite(ctx context.Context, cmd *types.Document) error {
	var res *wire.OpMsg
	var err error

	req := must.NotFail(documentOpMsg(cmd))

	switch cmd.Command() {
	case "insert":
		res, err = h.MsgInsert(ctx, req)
	case "update":
		res, err = h.MsgUpdate(ctx, req)
	default:
		res, err = h.MsgDelete(ctx, req)
	}

	if err != nil {
		return err
	}

	resDoc, err := opMsgDocument(res)
	if err != nil {
		return lazyerrors.Error(err)
	}

	if we, _ := resDoc.Get("writeErrors"); we != nil {
		return fmt.Errorf("write error: %v", types.FormatAnyValue(we))
	}

	return nil
}

func updateCommand(dbName, collName string, query, update *types.Document) *types.Document {
	return must.NotFail(types.NewDocument(
		"update", collName,
		"updates", must.NotFail(types.NewArray(must.NotFail(types.NewDocument(
			"q", query,
			"u", update,
			"upsert", true,
		)))),
		"ordered", true,
		"$db", dbName,
	))
}
