// The BEFORE UPDATE trigger that keeps jobs.updated_at and job_objects.updated_at current.
// Written in C so the scanner workers' per-object UPDATE pays no PL/pgSQL call per row.
#include "pg.hpp"

// Sets NEW.updated_at to the transaction's start time, as "NEW.updated_at = now()" would.
S3SCAN_SQL_FUNCTION(s3scan_touch_updated_at) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("touch_updated_at() can only be called as a trigger")));
    TriggerData *trigdata = (TriggerData *) fcinfo->context;
    if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
        !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("touch_updated_at() must be fired BEFORE UPDATE FOR EACH ROW")));

    Relation rel = trigdata->tg_relation;
    TupleDesc tupdesc = RelationGetDescr(rel);
    int attnum = SPI_fnumber(tupdesc, "updated_at");
    if (attnum <= 0 || TupleDescAttr(tupdesc, attnum - 1)->atttypid != TIMESTAMPTZOID)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("table \"%s\" has no timestamptz column \"updated_at\"",
                               RelationGetRelationName(rel))));

    Datum value = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    bool isnull = false;
    HeapTuple updated =
        heap_modify_tuple_by_cols(trigdata->tg_newtuple, tupdesc, 1, &attnum, &value, &isnull);
    return PointerGetDatum(updated);
}
