# The per-job counters (versions 1.1 to 1.4) across the upgrade paths and pg_dump (issue 9), and
# the full install script against the update chain (issue 18):
# (a) ALTER EXTENSION s3scan_jobs UPDATE (to 1.4, through 1.1, 1.2 and 1.3) on a 1.0 database with
#     data builds exact counters, also while a writer's transaction is open when it starts (the
#     update waits for it, and a writer arriving during the update waits for the update):
#     verify_job_counters() finds nothing and the readers equal an independent recount; writes
#     after the update keep them exact;
# (b) a fresh CREATE EXTENSION, which runs the full install script s3scan_jobs--1.4.sql (checked:
#     the file is installed, and the order the objects were created in is that script's), and
#     1.0 + UPDATE have the same schema: pg_dump --schema-only --binary-upgrade of both (which
#     lists every extension member, with its comment; a plain --schema-only shows only CREATE
#     EXTENSION) with the OIDs taken out, and the members, definitions, grants, owners, triggers,
#     storage parameters, dumped configuration tables and comments from the catalogs; a diff is
#     shown on failure; the comparisons are shown to see a disabled trigger and a changed comment;
# (c) pg_dump -Fc / pg_restore and pg_dump -Fp / psql of a 1.1 database with folded and pending
#     counters: the counters are not in the dump, the restored database's counters are exact and
#     its recount equals the source's;
# (d) TRUNCATE jobs CASCADE and DROP EXTENSION, in a transaction that locked jobs first, while
#     the worker folds: no deadlock;
# (e) ALTER EXTENSION UPDATE from 1.1 (maintenance on and off) and from 1.2 to 1.4 with folded
#     and pending counters: the counts carry over, the row-level triggers lose their WHEN clause
#     and are ENABLE REPLICA (or stay disabled), all ten take 'per_transaction' (1.3), writes in
#     both roles stay exact, also read inside their transaction, and the catalogs equal a fresh
#     1.4's.
# The refresh worker serves the upgraded database throughout (it must not fold before 1.1 exists).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use Time::HiRes;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCounters;

my $node = new_s3scan_node(
	'upgrade',
	preload => 1,
	conf    => "s3scan_jobs.database = 'up'\n"
	  . "s3scan_jobs.refresh_interval = '1s'\n"
	  . "s3scan_jobs.fold_interval = '100ms'\n");
$node->start;
my $bindir = $node->config_data('--bindir');
my $tmp    = PostgreSQL::Test::Utils::tempdir;
my $log_offset = log_size($node);

# Jobs of different sizes, objects in every status with different updated_at, findings, a job
# without objects, deleted objects and findings, a deleted job.
sub load_data
{
	my ($db, $first) = @_;
	my $J = job_uuid_sql("$first + j");
	$node->safe_psql(
		$db, qq{
INSERT INTO jobs (job_id, bucket, prefix, execution_arn)
SELECT $J, 'b', 'p/', 'arn:' || j FROM generate_series(1, 6) j;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
SELECT $J, 'b', 'k' || g, CASE WHEN g % 9 = 0 THEN NULL ELSE 'e' END,
       (ARRAY['queued','processing','succeeded','failed'])[1 + (g * j) % 4],
       now() - (g % 1000) * interval '1 minute'
FROM generate_series(1, 6) j, generate_series(1, (ARRAY[3000, 1500, 0, 800, 2000, 100])[j]) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $J, 'b', 'k' || g, 'e', 'email', '***', j
FROM generate_series(1, 6) j, generate_series(1, (ARRAY[900, 10, 0, 0, 300, 5])[j]) g;
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE 'k1%' AND status = 'queued';
DELETE FROM job_objects WHERE key LIKE 'k2%' AND job_id = ${\ job_uuid_sql("$first + 1")};
DELETE FROM findings WHERE key LIKE 'k3%';
DELETE FROM jobs WHERE job_id = ${\ job_uuid_sql("$first + 6")};
});
}

# --- (a) 1.0 with data, then ALTER EXTENSION UPDATE ------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE up');
$node->safe_psql('up', "CREATE EXTENSION s3scan_jobs VERSION '1.0'");
is( $node->safe_psql('up',
		"SELECT extversion, to_regclass('job_counters') IS NULL FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.0|t', 'version 1.0 installed, without counters');
load_data('up', 0);

# On 1.0 the views aggregate the base tables: the recount must agree with them (a check of the
# recount itself).
my ($diffs, $recount_10) = counter_diffs($node, 'up', no_internal => 1);
ok(!@$diffs, 'on 1.0, the recount equals job_progress_live, job_summary and job_status')
  or diag(join("\n", @$diffs));
my @jobs_10 = split /\n/, $recount_10;
is(scalar(@jobs_10), 5, 'five jobs');

# A writer's transaction is open when the update starts; another writer comes during it.
my $j1 = job_uuid_sql(1);
my $j2 = job_uuid_sql(2);
my $j5 = job_uuid_sql(5);
my $writer = $node->background_psql('up');
$writer->query_safe(
	qq{BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $j1, 'b', 'w' || g, 'e', 'processing' FROM generate_series(1, 300) g;
UPDATE job_objects SET status = 'failed' WHERE job_id = $j2 AND key LIKE 'k5%';
DELETE FROM job_objects WHERE job_id = $j5 AND key LIKE 'k4%';
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $j5, 'b', 'w' || g, 'e', 'ssn', '***', 1 FROM generate_series(1, 40) g;});
my $updater = $node->background_psql('up');
my $updater_pid = $updater->query_safe('SELECT pg_backend_pid()');
$updater->{stdin} .= "ALTER EXTENSION s3scan_jobs UPDATE;\n\\echo updated\n";
$updater->{run}->pump_nb;
my $waited = wait_for($node, 'postgres',
	"SELECT wait_event_type = 'Lock' OR state = 'idle' FROM pg_stat_activity WHERE pid = $updater_pid");
ok(defined $waited, 'the update runs');
note('the update ' . ($node->safe_psql('postgres',
	"SELECT state || ' ' || coalesce(wait_event_type, '-') FROM pg_stat_activity WHERE pid = $updater_pid")));
my $late = $node->background_psql('up');
$late->{stdin} .= qq{INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $j2, 'b', 'late' || g, 'e', 'queued' FROM generate_series(1, 70) g;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = $j1 AND key LIKE 'k7%';
\\echo late done
};
$late->{run}->pump_nb;
$writer->query_safe('COMMIT');
$updater->query_until(qr/updated/, '');
$late->query_until(qr/late done/, '');
is($updater->{stderr}, '', 'ALTER EXTENSION UPDATE succeeded');
is($late->{stderr}, '', 'the late writer succeeded');
$_->quit for ($writer, $updater, $late);

is($node->safe_psql('up', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'updated to 1.4 (through 1.1, 1.2 and 1.3)');
is($node->safe_psql('up', 'SELECT counter_maintenance()'), 't', 'counter maintenance is on after the update');
my $recount_up = counters_exact($node, 'up', 'after the update');
isnt($recount_up, $recount_10, 'the writers\' changes are in the recount');
like($recount_up, qr/^dddddddd-0000-4000-8000-000000000001\|\d+\|/m, 'job 1 is there');

# Writes after the update keep the counters exact.
$node->safe_psql(
	'up', qq{
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $j5, 'b', 'after' || g, 'e', 'queued' FROM generate_series(1, 25) g;
UPDATE job_objects SET status = 'processing' WHERE job_id = $j1 AND key LIKE 'k8%';
DELETE FROM job_objects WHERE job_id = $j2 AND key LIKE 'late1%';
DELETE FROM jobs WHERE job_id = ${\ job_uuid_sql(4)};
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $j2, 'b', 'after' || g, 'e', 'ssn', '***', 2 FROM generate_series(1, 15) g;
});
counters_exact($node, 'up', 'after writes on the updated database');
ok(defined wait_for($node, 'up', 'SELECT count(*) = 0 FROM job_counter_deltas'),
	'the worker folds in the updated database');
counters_exact($node, 'up', 'after the worker folded');
ok(defined wait_for($node, 'up', "SELECT outcome = 'refreshed' FROM refresh_job_progress()"),
	'refresh in the updated database');
is(matview_diffs($node, 'up'), '', 'job_progress of the updated database equals the recount');

# An update whose snapshot is older than the writes it waits for: with
# default_transaction_isolation = 'repeatable read' the ALTER's whole script runs in the snapshot
# taken when the command started. Either it refuses, leaving 1.0, or its counters are exact.
$node->safe_psql('postgres', 'CREATE DATABASE up_rr');
$node->safe_psql('up_rr', "CREATE EXTENSION s3scan_jobs VERSION '1.0'");
load_data('up_rr', 0);
$node->safe_psql('postgres',
	"ALTER DATABASE up_rr SET default_transaction_isolation = 'repeatable read'");
$writer = $node->background_psql('up_rr');
$writer->query_safe(
	qq{BEGIN ISOLATION LEVEL READ COMMITTED;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $j1, 'b', 'w' || g, 'e', 'processing' FROM generate_series(1, 300) g;});
$updater = $node->background_psql('up_rr', on_error_stop => 0);
$updater_pid = $updater->query_safe('SELECT pg_backend_pid()');
$updater->{stdin} .= "ALTER EXTENSION s3scan_jobs UPDATE;\n\\echo updated\n";
$updater->{run}->pump_nb;
ok( defined wait_for(
		$node, 'postgres',
		"SELECT wait_event_type = 'Lock' OR state = 'idle' FROM pg_stat_activity WHERE pid = $updater_pid"),
	'repeatable read: the update runs');
$writer->query_safe('COMMIT');
$updater->query_until(qr/updated/, '');
my $rr_error = $updater->{stderr};
$_->quit for ($writer, $updater);
my $rr_version =
  $node->safe_psql('up_rr', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'");
note("repeatable read update: version $rr_version, error: $rr_error");
if ($rr_version eq '1.0')
{
	like($rr_error, qr/ERROR/, 'repeatable read: the update refused, with an error');
	$node->safe_psql('postgres', 'ALTER DATABASE up_rr RESET default_transaction_isolation');
	$node->safe_psql('up_rr', 'ALTER EXTENSION s3scan_jobs UPDATE');
}
counters_exact($node, 'up_rr', 'an update started in repeatable read');

# --- (b) fresh 1.4 (its full install script) and 1.0 + update: the same schema ---------------

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION s3scan_jobs');
is($node->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'a fresh install is 1.4');
# PostgreSQL runs the install script of the target version when there is one, rather than 1.0's
# and the updates: the comparisons below then prove that script equal to the update chain. That
# it ran shows in the order the objects were created: the full script creates the counters
# before the views, the chain creates job_progress_live in 1.0 and job_counters in 1.1.
ok(-f $node->config_data('--sharedir') . '/extension/s3scan_jobs--1.4.sql',
	'the full install script s3scan_jobs--1.4.sql is installed');
my $created_first = q{SELECT CASE WHEN 'job_counters'::regclass::oid < 'job_progress_live'::regclass::oid
	THEN 'job_counters' ELSE 'job_progress_live' END};
is($node->safe_psql('fresh', $created_first), 'job_counters',
	'a fresh install ran s3scan_jobs--1.4.sql (the counters were created before the views)');
is($node->safe_psql('up', $created_first), 'job_progress_live',
	'the updated database ran 1.0 and the updates (the views were created before the counters)');

# pg_dump --schema-only --binary-upgrade: every member of the extension, with its definition,
# owner, grants, trigger states; OIDs (which differ between any two databases) taken out.
sub schema_dump
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[ "$bindir/pg_dump", '--schema-only', '--binary-upgrade', '-d', $node->connstr($db) ],
		'>', \$out, '2>', \$err)
	  or die "pg_dump --binary-upgrade of $db failed: $err";
	my @kept;
	for my $line (split /\n/, $out)
	{
		# The calls that make pg_upgrade keep OIDs, relfilenodes and the like.
		next if $line =~ /^SELECT pg_catalog\.binary_upgrade_set_next_\w+\(.*\);$/;
		# relfrozenxid / relminmxid, set by OID.
		next if $line =~ /^SET relfrozenxid = '\d+', relminmxid = '\d+'$/;
		next if $line =~ /^WHERE oid = '\d+';$/;
		next if $line =~ /^-- Dumped (from|by)/;
		# Sequence positions are data (binary-upgrade dumps them with the schema).
		next if $line =~ /^SELECT pg_catalog\.setval\(/;
		# pg_dump's random psql \restrict key.
		next if $line =~ /^\\(un)?restrict \w+$/;
		# binary_upgrade_create_empty_extension's list of configuration tables, by OID (compared
		# by name below).
		$line =~ s/'\{\d+(,\d+)*\}'/'{OIDS}'/g
		  if $line =~ /binary_upgrade_create_empty_extension/;
		push @kept, $line;
	}
	return join("\n", @kept) . "\n";
}

sub show_diff
{
	my ($name_a, $a, $name_b, $b) = @_;
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name_a", $a);
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name_b", $b);
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'diff', '-u', "$tmp/$name_a", "$tmp/$name_b" ], '>', \$out, '2>', \$err);
	my @lines = split /\n/, $out;
	@lines = (@lines[ 0 .. 199 ], '...') if @lines > 200;
	return join("\n", @lines);
}

my $dump_up    = schema_dump('up');
my $dump_fresh = schema_dump('fresh');
like($dump_fresh, qr/CREATE TABLE public\.job_counter_deltas/, 'the dump lists the extension\'s members');
unlike($dump_fresh, qr/'1\d{4,}'/, 'no OID left in the compared dump');
ok($dump_up eq $dump_fresh,
	'pg_dump --schema-only --binary-upgrade: 1.0 + UPDATE equals a fresh 1.4')
  or diag(show_diff('dump_updated.sql', $dump_up, 'dump_fresh.sql', $dump_fresh));

# The same from the catalogs, independently of pg_dump.
my $catalog_sql = q{
SELECT 'member: ' || pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 's3scan_jobs'
UNION ALL
SELECT 'trigger: ' || tgrelid::regclass || ' ' || tgname || ' ' || tgenabled::text || ' ' || pg_get_triggerdef(oid)
FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'config: ' || c::regclass || ' ' || coalesce(nullif(cond, ''), '-')
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond) WHERE e.extname = 's3scan_jobs'
UNION ALL
SELECT 'view: ' || oid::regclass || ' ' || pg_get_viewdef(oid) FROM pg_class
WHERE relkind IN ('v', 'm') AND relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'function: ' || oid::regprocedure || ' ' || pg_get_functiondef(oid) || ' ' || coalesce(proacl::text, '-')
FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND prokind IN ('f', 'p')
UNION ALL
SELECT 'index: ' || pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
UNION ALL
SELECT 'column: ' || attrelid::regclass || ' ' || attnum || ' ' || attname || ' '
       || format_type(atttypid, atttypmod) || ' ' || attnotnull || ' ' || attisdropped
       || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-')
FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace) AND attnum > 0
UNION ALL
SELECT 'constraint: ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'relation: ' || oid::regclass || ' ' || relkind::text || ' ' || relpersistence::text || ' '
       || relreplident::text || ' ' || coalesce(reloptions::text, '-') || ' ' || coalesce(relacl::text, '-')
       || ' ' || relowner::regrole
FROM pg_class WHERE relnamespace = 'public'::regnamespace
UNION ALL
SELECT 'event trigger: ' || evtname || ' ' || evtevent || ' ' || evtenabled::text || ' ' || evttags::text
       || ' ' || evtfoid::regprocedure || ' ' || evtowner::regrole
FROM pg_event_trigger
UNION ALL
-- The comment of every object created after initdb (so of every member of the extension and of
-- their columns): obj_description() and col_description() of each.
SELECT 'comment: ' || pg_describe_object(classoid, objoid, objsubid) || ': ' || description
FROM pg_description WHERE objoid >= 16384
ORDER BY 1};
my $cat_up    = $node->safe_psql('up',    $catalog_sql);
my $cat_fresh = $node->safe_psql('fresh', $catalog_sql);
like($cat_fresh, qr/^trigger: job_objects job_objects_count_inserts A /m,
	'the counter triggers are ENABLE ALWAYS');
like($cat_fresh, qr/^comment: view job_summary: for applications: /m, 'the catalogs list the comments');
like($cat_fresh, qr/^comment: column status of table job_objects: /m, '... of columns too');
ok($cat_up eq $cat_fresh, 'catalogs: 1.0 + UPDATE equals a fresh 1.4 (members, definitions, grants)')
  or diag(show_diff('catalog_updated.txt', $cat_up, 'catalog_fresh.txt', $cat_fresh));

# The comparisons see a difference: a trigger disabled in one database.
$node->safe_psql('fresh', 'ALTER TABLE findings DISABLE TRIGGER findings_count_truncate');
isnt(schema_dump('fresh'), $dump_up, 'a disabled trigger: the dumps differ');
isnt($node->safe_psql('fresh', $catalog_sql), $cat_up, 'a disabled trigger: the catalogs differ');
# (Since 1.4 a trigger changed by hand switches reads to the base tables until
# set_counter_maintenance(true) puts everything back.)
$node->safe_psql('fresh', 'ALTER TABLE findings ENABLE ALWAYS TRIGGER findings_count_truncate');
is($node->safe_psql('fresh', 'SELECT counter_maintenance()'), 'f',
	'enabled again by hand: counter maintenance stays off');
$node->safe_psql('fresh', 'SELECT set_counter_maintenance(true)');
is(schema_dump('fresh'), $dump_fresh, 'after set_counter_maintenance(true): the same dump');
# ... and a changed comment, of a column.
my $comment = $node->safe_psql('fresh',
	"SELECT quote_literal(col_description('job_summary'::regclass, 7))");
$node->safe_psql('fresh', "COMMENT ON COLUMN job_summary.queued IS 'changed'");
isnt(schema_dump('fresh'), $dump_up, 'a changed comment: the dumps differ');
isnt($node->safe_psql('fresh', $catalog_sql), $cat_up, 'a changed comment: the catalogs differ');
$node->safe_psql('fresh', "COMMENT ON COLUMN job_summary.queued IS $comment");
is($node->safe_psql('fresh', $catalog_sql), $cat_up, 'the comment back: the same catalogs');

# --- (e) 1.1 or 1.2 with data, then ALTER EXTENSION UPDATE to 1.3 -------------------------------
# 1.2 and 1.3 change no count, only how they are written: the counters (folded and pending) carry
# over as they are, the row-level triggers' state follows the maintenance switch (REPLICA when
# on, disabled when off), and the schema equals a fresh install's.
for my $case (['v11_on', 1, '1.1'], ['v11_off', 0, '1.1'], ['v12_on', 1, '1.2'])
{
	my ($db, $on, $from) = @$case;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, "CREATE EXTENSION s3scan_jobs VERSION '$from'");
	like($node->safe_psql($db, "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'job_objects_count_replicated'"),
		qr/WHEN/, "$db: 1.1's row-level trigger has its WHEN clause") if $from eq '1.1';
	load_data($db, 200);
	$node->safe_psql($db, 'SELECT fold_job_counters()');
	$node->safe_psql($db, "UPDATE job_objects SET status = 'failed' WHERE key LIKE 'k3%'");
	$node->safe_psql($db, 'SELECT set_counter_maintenance(false)') unless $on;
	my $before = $on ? counters_exact($node, $db, "$db: 1.1 before the update") : undef;
	cmp_ok($node->safe_psql($db, 'SELECT count(*) FROM job_counter_deltas'), '>', 0, "$db: deltas pending")
	  if $on;

	$node->safe_psql($db, 'ALTER EXTENSION s3scan_jobs UPDATE');
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
		'1.4', "$db: updated to 1.4");
	is( $node->safe_psql(
			$db, "SELECT count(*) FROM pg_trigger
			      WHERE tgname LIKE '%count%' AND tgnargs = 2
			        AND pg_catalog.encode(tgargs, 'escape') LIKE '%per_transaction%'"),
		'10', "$db: the ten counter triggers write their deltas per transaction");
	is($node->safe_psql($db, 'SELECT counter_maintenance()'), $on ? 't' : 'f', "$db: maintenance as before");
	is( $node->safe_psql(
			$db, "SELECT string_agg(tgname || ' ' || tgenabled::text, ', ' ORDER BY tgname) FROM pg_trigger
			      WHERE tgname LIKE '%count_replicated' AND tgqual IS NULL"),
		$on
		? 'findings_count_replicated R, job_objects_count_replicated R'
		: 'findings_count_replicated D, job_objects_count_replicated D',
		"$db: the row-level triggers have no WHEN clause and are " . ($on ? 'ENABLE REPLICA' : 'disabled'));
	if ($on)
	{
		is(counters_exact($node, $db, "$db: after the update"), $before, "$db: the same counts as before");
	}
	else
	{
		$node->safe_psql($db, 'SELECT set_counter_maintenance(true)');
		counters_exact($node, $db, "$db: maintenance turned on after the update");
	}
	# Writes in both roles after the update: counted once each (by the statement-level
	# triggers, and by the row-level ones under the replica role).
	$node->safe_psql(
		$db, qq{
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE 'k2%';
SET session_replication_role = replica;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ${\ job_uuid_sql(201)}, 'b', 'replicated' || g, 'e', 'queued' FROM generate_series(1, 40) g;
UPDATE job_objects SET status = 'processing' WHERE key LIKE 'k4%';
DELETE FROM findings WHERE key LIKE 'k5%';
RESET session_replication_role;
DELETE FROM job_objects WHERE key LIKE 'k6%';
});
	counters_exact($node, $db, "$db: writes in both roles after the update");
	# Inside a writing transaction: its own deltas are not rows yet, and the reads count them.
	is( $node->safe_psql(
			$db, qq{
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT (SELECT min(job_id::text)::uuid FROM jobs), 'b', 'in-transaction', 'e', 'email', 'x', g FROM generate_series(1, 3) g;
UPDATE job_objects SET status = 'queued' WHERE key LIKE 'k7%';
SELECT (SELECT count(*) FROM pending_counter_deltas()) > 0, (SELECT count(*) FROM verify_job_counters());
COMMIT;
}), 't|0', "$db: inside a writing transaction, pending deltas counted and verify finds nothing");
	counters_exact($node, $db, "$db: after that transaction");
	my $cat = $node->safe_psql($db, $catalog_sql);
	ok($cat eq $cat_fresh, "$db: catalogs: $from + UPDATE equals a fresh 1.4")
	  or diag(show_diff("catalog_$db.txt", $cat, 'catalog_fresh.txt', $cat_fresh));
}

# --- (c) pg_dump / pg_restore of a 1.3 database with data -------------------------------------

load_data('fresh', 100);
# Some deltas folded, some pending.
$node->safe_psql('fresh', 'SELECT fold_job_counters()');
$node->safe_psql(
	'fresh', qq{
UPDATE job_objects SET status = 'failed' WHERE key LIKE 'k4%';
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ${\ job_uuid_sql(102)}, 'b', 'pending' || g, 'e', 'queued' FROM generate_series(1, 30) g;
DELETE FROM findings WHERE key LIKE 'k5%';
});
cmp_ok($node->safe_psql('fresh', 'SELECT count(*) FROM job_counter_deltas'),
	'>', 0, 'the source has pending deltas');
cmp_ok($node->safe_psql('fresh', 'SELECT count(*) FROM job_counters'),
	'>', 0, 'the source has folded counters');
my $recount_src = counters_exact($node, 'fresh', 'the source of the dump');

my $dump = "$tmp/fresh.dump";
$node->command_ok([ "$bindir/pg_dump", '-Fc', '-f', $dump, '-d', $node->connstr('fresh') ],
	'pg_dump -Fc');
my ($toc, $err) = ('', '');
IPC::Run::run([ "$bindir/pg_restore", '-l', $dump ], '>', \$toc, '2>', \$err);
unlike($toc, qr/job_counter/, 'job_counters and job_counter_deltas are not in the dump');
like($toc, qr/TABLE DATA public job_objects/, 'job_objects rows are');

# Custom format through pg_restore, and plain format through psql (COPY ... FROM stdin). (Not
# pg_restore -j: it loads jobs, job_objects and findings in parallel without knowing their
# foreign keys, which come with the extension, and fails on them at random, counters or not.)
my $plain = "$tmp/fresh.sql";
$node->command_ok([ "$bindir/pg_dump", '-Fp', '-f', $plain, '-d', $node->connstr('fresh') ],
	'pg_dump -Fp');
for my $case ([ 'restored', 'pg_restore' ], [ 'restored_plain', 'psql' ])
{
	my ($db, $how) = @$case;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my ($out, $rerr) = ('', '');
	my $cmd =
	  $how eq 'pg_restore'
	  ? [ "$bindir/pg_restore", '--exit-on-error', '-d', $node->connstr($db), $dump ]
	  : [ "$bindir/psql", '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db), '-f', $plain ];
	my $ok = IPC::Run::run($cmd, '>', \$out, '2>', \$rerr);
	ok($ok, "$how into $db") or diag($rerr);
	my $recount = counters_exact($node, $db, "restored by $how");
	is($recount, $recount_src, "$db: the recount equals the source's");
	$node->safe_psql(
		$db, qq{
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT ${\ job_uuid_sql(101)}, 'b', 'new' || g, 'e', 'queued' FROM generate_series(1, 10) g;
UPDATE job_objects SET status = 'succeeded' WHERE key LIKE 'k6%';
});
	$node->safe_psql($db, 'SELECT fold_job_counters()');
	counters_exact($node, $db, "restored by $how, after writes and a fold");
}

# --- (d) DDL while the worker folds ------------------------------------------------------------
# The worker folds every fold_interval from 1.1 on. A command that locks jobs and then the other
# tables, as DROP EXTENSION and TRUNCATE jobs CASCADE do, must not deadlock with a fold (which
# would fail the command, or the fold). Here the command's transaction locks jobs first, a
# pending delta makes the worker fold, and then the command runs.

$node->append_conf('postgresql.conf',
	"s3scan_jobs.database = 'up, dropper'\ns3scan_jobs.fold_interval = '10ms'\n"
	  . "s3scan_jobs.refresh_interval = '1h'\ndeadlock_timeout = '200ms'\n");
$node->reload;
$node->safe_psql('postgres', 'CREATE DATABASE dropper');
ok( defined wait_for(
		$node, 'up',
		"SELECT count(*) = 1 FROM refresh_worker_status WHERE database = 'dropper' AND pid IS NOT NULL"),
	'a worker serves the database');
for my $ddl ('TRUNCATE jobs CASCADE', 'DROP EXTENSION s3scan_jobs CASCADE')
{
	$node->safe_psql(
		'dropper', qq{
CREATE EXTENSION IF NOT EXISTS s3scan_jobs;
INSERT INTO jobs (job_id, bucket) VALUES ($j1, 'b') ON CONFLICT DO NOTHING;
INSERT INTO job_objects (job_id, bucket, key) SELECT $j1, 'b', 'k' || g FROM generate_series(1, 50) g
ON CONFLICT DO NOTHING;
});
	ok(defined wait_for($node, 'dropper', 'SELECT count(*) = 0 FROM job_counter_deltas'),
		"$ddl: folded");
	my $offset = log_size($node);
	my $ddl_session = $node->background_psql('dropper', on_error_stop => 0);
	$ddl_session->query_safe('BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE');
	# A delta to fold (a DELETE needs no lock on jobs).
	$node->safe_psql('dropper', "DELETE FROM job_objects WHERE job_id = $j1 AND key = 'k7'");
	# Give the worker (folding every 10 ms) time to try: it either waits for jobs, holding
	# what the fold locked before, or skips the fold.
	my $worker_waits = wait_for($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 's3scan_jobs refresh worker'
		   AND datname = 'dropper' AND wait_event_type = 'Lock'", 't', 2);
	note("$ddl: the worker " . (defined $worker_waits ? 'waits for a lock' : 'does not wait (skips)'));
	my ($out, $ret) = $ddl_session->query("$ddl");
	my $ddl_err = $ddl_session->{stderr};
	$ddl_session->query('COMMIT');
	$ddl_session->quit;
	unlike($ddl_err, qr/ERROR/, "$ddl after locking jobs, while the worker folds: no error");
	my @deadlocks = log_lines($node, $offset, qr/deadlock detected/);
	is(scalar(@deadlocks), 0, "$ddl: no deadlock (neither the command nor the fold fails)")
	  or diag(join("\n", log_lines($node, $offset, qr/ERROR|DETAIL|CONTEXT/)));
}
$node->safe_psql('dropper', 'CREATE EXTENSION IF NOT EXISTS s3scan_jobs');
counters_exact($node, 'dropper', 'after the DDL');

my @errors = grep { !/canceling statement due to user request|deadlock detected/ }
  log_lines($node, $log_offset, qr/ERROR|FATAL|PANIC/);
@errors = grep { !/pg_dump|pg_restore/ } @errors;
note("log errors:\n" . join("\n", @errors)) if @errors;
is(scalar(grep { /s3scan_jobs refresh worker/ } @errors), 0,
	'the refresh worker logged no error (on 1.0, during and after the update, around DROP EXTENSION)');

$node->stop;
done_testing();
