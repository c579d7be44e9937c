# The per-job counters when their triggers are changed by something other than
# set_counter_maintenance(), and under logical replication (1.4). With real servers:
# (a) pg_dump -Fc --data-only of a database with jobs, objects and findings, restored by
#     pg_restore --data-only --disable-triggers (as a superuser) into a database whose extension
#     is empty: the restore's ALTER TABLE ... DISABLE/ENABLE TRIGGER ALL is noticed (WARNING in
#     pg_restore's output and in the server log), counter_maintenance() is false, and job_summary,
#     job_progress_live and job_status(id, true) count the base tables exactly, also after more
#     writes; after set_counter_maintenance(true) the ten counter triggers are ENABLE ALWAYS /
#     ENABLE REPLICA again, counter_maintenance() is true, verify_job_counters() finds nothing,
#     the counters (job_counters + job_counter_deltas) equal the base tables, and stay so through
#     more writes.
# (b) a publisher and a subscriber, both with the extension (subscription on jobs, job_objects
#     and findings): the initial copy and the publisher's inserts, status updates, multi-row
#     updates, moves and deletes (also of a whole job) are counted exactly on the subscriber
#     (its apply worker fires only the ENABLE REPLICA row triggers). Then ALTER TABLE job_objects
#     / findings ENABLE TRIGGER ALL on the subscriber (its triggers become ORIGIN, which apply does
#     not fire): WARNING, counter_maintenance() false, and what the publisher writes next is still
#     counted exactly (from the base tables); set_counter_maintenance(true) on the subscriber
#     makes the counters exact and maintained again, through more replicated writes.
# (c) a publication FOR ALL TABLES (job_counter_deltas included) on a node whose refresh worker
#     folds every 100 ms and refreshes every second: after writes the worker folds every delta
#     (job_counter_deltas drains without help, job_counters alone is exact), refreshes after one
#     more write (a new 'worker' / 'refreshed' row in refresh_history; with nothing changed its
#     passes are 'unchanged'), refresh_job_progress() says 'refreshed',
#     job_progress equals the recount, and no "does not have a replica identity" error is logged.
# (d) session_replication_role = replica in a plain session: its inserts, updates, moves and
#     deletes are counted (row-level triggers) and counter_maintenance() stays true; a trigger
#     changed in such a session is noticed too (the event trigger is ENABLE ALWAYS).
#
# Every comparison is with an independent recount of the base tables, in the same snapshot
# (S3ScanCounters.pm), never with hard-coded totals; on the subscriber also with the publisher's
# recount. Every wait is bounded polling (wait_for, wait_for_catchup).
#
# On 1.3 (no event trigger; counter_maintenance() only looked at one trigger; job_counter_deltas
# without a replica identity): (a) sees no WARNING, counter_maintenance() true and counts that
# miss every restored row; (b) after ENABLE TRIGGER ALL the subscriber reports true and never
# counts the publisher's later writes; (c) every fold and refresh fails ("cannot delete from
# table "job_counter_deltas" because it does not have a replica identity and publishes
# deletes"); (d) the counting passes on 1.3 too, the trigger change under the replica role does
# not.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCounters;

my $common = "s3scan_jobs.refresh_interval = '1s'\n"
  . "s3scan_jobs.fold_interval = '100ms'\n"
  . "deadlock_timeout = '100ms'\n";

# (psql_result() sets VERBOSITY verbose: the SQLSTATE may follow "WARNING:".)
my $warning_re =
  qr/WARNING:\s+(?:01000:\s+)?the counter triggers of s3scan_jobs were changed outside set_counter_maintenance\(\)/;

# The ten counter triggers and their states, as "table.trigger=state" lines.
my $states_sql = q{
SELECT string_agg(c.relname || '.' || t.tgname || '=' || t.tgenabled::text, ',' ORDER BY c.relname, t.tgname)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relname IN ('job_objects', 'findings') AND t.tgname ~ '_count_'};
# As set_counter_maintenance(true) leaves them (spec: statement-level ENABLE ALWAYS, the row-level
# "replicated" ones ENABLE REPLICA).
my $maintained_states = join(',',
	map {
		my $t = $_;
		map { "$t.${t}_count_$_=" . ($_ eq 'replicated' ? 'R' : 'A') }
		  qw(deletes inserts replicated truncate updates)
	} qw(findings job_objects));

# Reads count the base tables (the counters are not used): job_progress_live, job_summary and
# job_status(id, true) against the recount, in one snapshot. Returns the recount.
sub fallback_exact
{
	my ($node, $db, $label, %opts) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my ($diffs, $recount) = counter_diffs($node, $db, no_internal => 1, %opts);
	ok(!@$diffs, "$label: job_progress_live, job_summary and job_status(id, true) equal the recount")
	  or diag(join("\n", @$diffs));
	return $recount;
}

# Counters maintained: counter_maintenance() true, the triggers as set_counter_maintenance(true)
# left them, and the readers, the counters and verify_job_counters() exact. Returns the recount.
sub maintained_exact
{
	my ($node, $db, $label) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	is($node->safe_psql($db, 'SELECT counter_maintenance()'), 't', "$label: counter_maintenance() is true");
	is($node->safe_psql($db, $states_sql), $maintained_states,
		"$label: the counter triggers are ENABLE ALWAYS / ENABLE REPLICA");
	return counters_exact($node, $db, $label);
}

# The number of jobs, objects and findings the recount covers (so a check is not vacuous).
sub recount_size
{
	my ($recount) = @_;
	my ($jobs, $objects, $findings) = (0, 0, 0);
	for (split /\n/, $recount)
	{
		my @c = split /\|/, $_, -1;
		$jobs++;
		$objects  += $c[1];
		$findings += $c[6];
	}
	return ($jobs, $objects, $findings);
}

# A batch of the client's writes, each statement in its own transaction unless noted: two new
# jobs with objects in every status and findings; single-row status updates; a multi-row update
# over every job (earlier batches' rows too); objects moved to the other job; objects and findings
# deleted; a third job created with rows and deleted (cascade). $tag keeps keys and job ids apart
# (job ids are md5('$tag-a')::uuid ...). Under the replica role foreign keys do not act: pass
# replica => 1 to leave out the cascade, and run the batch after SET session_replication_role.
sub batch_sql
{
	my ($tag, %opts) = @_;
	my ($a, $b, $c) = map {"md5('$tag-$_')::uuid"} qw(a b c);
	my $sql = qq{
BEGIN;
INSERT INTO jobs (job_id, bucket, prefix, execution_arn) VALUES ($a, 'b', '$tag/', 'arn:$tag'), ($b, 'b', '$tag/', NULL);
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT j, 'b', '$tag-' || g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'e' || g END,
       (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4]
FROM unnest(ARRAY[$a, $b]) j, generate_series(1, 40) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT CASE WHEN g <= 12 THEN $a ELSE $b END, 'b', '$tag-f', 'e', 'email', '***', g
FROM generate_series(1, 17) g;
COMMIT;
UPDATE job_objects SET status = 'succeeded' WHERE job_id = $a AND key = '$tag-1';
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied' WHERE job_id = $a AND key = '$tag-2';
UPDATE job_objects SET status = 'processing' WHERE job_id = $b AND key = '$tag-4';
UPDATE job_objects SET status = CASE status WHEN 'queued' THEN 'processing' WHEN 'processing' THEN 'succeeded'
                                            ELSE status END
WHERE key LIKE '%3';
UPDATE job_objects SET job_id = $b, key = key || '-moved' WHERE job_id = $a AND key LIKE '$tag-2_';
DELETE FROM job_objects WHERE job_id = $b AND key LIKE '$tag-1_';
DELETE FROM findings WHERE job_id = $a AND byte_offset % 3 = 0;
UPDATE findings SET job_id = $a WHERE job_id = $b AND byte_offset = 17;
};
	$sql .= qq{
BEGIN;
INSERT INTO jobs (job_id, bucket, prefix) VALUES ($c, 'b', '$tag/');
INSERT INTO job_objects (job_id, bucket, key, etag, status)
SELECT $c, 'b', '$tag-c' || g, 'e', 'queued' FROM generate_series(1, 9) g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset)
SELECT $c, 'b', '$tag-c', 'e', 'ssn', '***', g FROM generate_series(1, 4) g;
COMMIT;
DELETE FROM jobs WHERE job_id = $c;
} unless $opts{replica};
	return $sql;
}

# =================================================================================================
# (a) pg_dump --data-only / pg_restore --data-only --disable-triggers
# =================================================================================================

my $node = new_s3scan_node('restore', preload => 1,
	conf => $common . "s3scan_jobs.database = 'src'\n");
$node->start;
my $bindir = $node->config_data('--bindir');
my $tmp    = PostgreSQL::Test::Utils::tempdir;

for my $db (qw(src dst))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
}
is($node->safe_psql('dst', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'"),
	'1.4', 'the extension is at version 1.4');

my @src_jobs = map {"eeeeeeee-0000-4000-8000-00000000000$_"} 1 .. 4;
add_job($node, 'src', $src_jobs[0], 40, 7);
add_job($node, 'src', $src_jobs[1], 13, 0);
add_job($node, 'src', $src_jobs[2], 0,  0);
add_job($node, 'src', $src_jobs[3], 6,  3);
$node->safe_psql('src', batch_sql('src1'));
$node->safe_psql(
	'src', qq{
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied'
 WHERE job_id = '$src_jobs[0]' AND key LIKE 'scan/$src_jobs[0]/obj-1%';
DELETE FROM job_objects WHERE job_id = '$src_jobs[3]' AND key LIKE '%obj-2';
});
my $src_recount = maintained_exact($node, 'src', 'source before the dump');
my ($nj, $no, $nf) = recount_size($src_recount);
ok($nj >= 5 && $no > 50 && $nf > 10, "the source has jobs, objects and findings ($nj, $no, $nf)");

my $dump = "$tmp/src_data.dump";
$node->command_ok(
	[ "$bindir/pg_dump", '-Fc', '--data-only', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc --data-only of the source');

is(maintained_exact($node, 'dst', 'target before the restore'), '', 'the target has no jobs');
my $log_offset = log_size($node);
my ($rout, $rerr) = ('', '');
my $ok = IPC::Run::run(
	[
		"$bindir/pg_restore", '--verbose', '--data-only', '--disable-triggers', '--exit-on-error',
		'-d', $node->connstr('dst'), $dump
	],
	'>', \$rout, '2>', \$rerr);
ok($ok, 'pg_restore --data-only --disable-triggers as a superuser succeeds') or diag($rerr);
like($rerr, qr/disabling triggers for job_objects/,
	'pg_restore disabled the triggers of job_objects')
  or diag($rerr);
like($rerr, $warning_re, "the restore's output shows the WARNING") or diag($rerr);
like(log_since($node, $log_offset), $warning_re, 'the server log shows the WARNING');
like(log_since($node, $log_offset), qr/HINT:\s+SELECT set_counter_maintenance\(true\)/,
	'... with its HINT');

is($node->safe_psql('dst', 'SELECT counter_maintenance()'), 'f',
	'after the restore: counter_maintenance() is false');
isnt($node->safe_psql('dst', $states_sql), $maintained_states,
	'after the restore: the counter triggers are not as set_counter_maintenance(true) leaves them');
my $dst_recount = fallback_exact($node, 'dst', 'after the restore');
is($dst_recount, $src_recount, "after the restore: the target's recount equals the source's");

$node->safe_psql('dst', batch_sql('dst1'));
fallback_exact($node, 'dst', 'after the restore, more writes before set_counter_maintenance(true)');
is($node->safe_psql('dst', 'SELECT counter_maintenance()'), 'f', '... counter_maintenance() still false');

$node->safe_psql('dst', 'SELECT set_counter_maintenance(true)');
maintained_exact($node, 'dst', 'after set_counter_maintenance(true)');
$node->safe_psql('dst', batch_sql('dst2'));
$node->safe_psql('dst',
	"UPDATE job_objects SET status = 'succeeded' WHERE job_id = '$src_jobs[1]' AND status <> 'succeeded'");
$node->safe_psql('dst', "DELETE FROM jobs WHERE job_id = '$src_jobs[3]'");
my $dst_after = maintained_exact($node, 'dst', 'maintained again, more writes');
isnt($dst_after, $dst_recount, '... the writes changed the counts');

# =================================================================================================
# (d) session_replication_role = replica in a plain session (on the source database)
# =================================================================================================

my $replica_run = sub { $node->safe_psql('src', "SET session_replication_role = replica;\n$_[0]") };
my $before_replica = maintained_exact($node, 'src', 'replica role: before');
my ($r, $o, $e) = psql_result(
	$node, 'src', "SET session_replication_role = replica;\n" . batch_sql('rep1', replica => 1) . qq{
UPDATE job_objects SET status = 'queued' WHERE job_id = '$src_jobs[0]' AND status = 'failed';
DELETE FROM job_objects WHERE job_id = '$src_jobs[1]' AND key LIKE '%obj-1_';
DELETE FROM findings WHERE job_id = '$src_jobs[3]';
SHOW session_replication_role;
SELECT counter_maintenance();});
is($r, 0, 'replica role: the writes succeed') or diag($e);
is($o, "replica\nt", 'replica role: in the writing session counter_maintenance() is true');
my ($diffs) = counter_diffs($node, 'src', run => $replica_run);
ok(!@$diffs, 'replica role: read in a replica-role session, the readers and the counters equal the recount')
  or diag(join("\n", @$diffs));
isnt(maintained_exact($node, 'src', 'replica role: after its writes'),
	$before_replica, 'replica role: the writes changed the counts');

# A trigger changed in a replica-role session is noticed too.
$log_offset = log_size($node);
($r, $o, $e) = psql_result($node, 'src',
	"SET session_replication_role = replica;\nALTER TABLE findings DISABLE TRIGGER findings_count_replicated;");
is($r, 0, 'replica role: ALTER TABLE findings DISABLE TRIGGER findings_count_replicated') or diag($e);
like($e, $warning_re, 'replica role: ... gives the WARNING');
is($node->safe_psql('src', 'SELECT counter_maintenance()'), 'f', '... counter_maintenance() is false');
$replica_run->(batch_sql('rep2', replica => 1));
fallback_exact($node, 'src', 'replica role, trigger disabled: more writes in a replica-role session');
$node->safe_psql('src', 'SELECT set_counter_maintenance(true)');
$replica_run->(batch_sql('rep3', replica => 1));
maintained_exact($node, 'src', 'replica role: after set_counter_maintenance(true) and more writes');
$node->stop;

# =================================================================================================
# (b) logical replication: publisher and subscriber
# =================================================================================================

my $db  = 'work';
my $pub = new_s3scan_node('pub', preload => 1, allows_streaming => 'logical',
	conf => $common . "s3scan_jobs.database = '$db'\n");
my $sub = new_s3scan_node('sub', preload => 1, conf => $common . "s3scan_jobs.database = '$db'\n");
$pub->start;
$sub->start;
for my $n ($pub, $sub)
{
	$n->safe_psql('postgres', "CREATE DATABASE $db");
	$n->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
}
$pub->safe_psql($db, batch_sql('init'));
add_job($pub, $db, 'ffffffff-0000-4000-8000-000000000001', 25, 4);
$pub->safe_psql($db, 'CREATE PUBLICATION counters_pub FOR TABLE jobs, job_objects, findings');
$sub->safe_psql($db,
	"CREATE SUBSCRIPTION counters_sub CONNECTION '" . $pub->connstr() . " dbname=$db' PUBLICATION counters_pub");
$sub->wait_for_subscription_sync($pub, 'counters_sub', $db);

# After catch-up: the subscriber's recount equals the publisher's, and the subscriber's readers
# (and, when maintained, its counters) equal its recount.
sub replicated
{
	my ($label, $maintained) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	$pub->wait_for_catchup('counters_sub');
	my $on_pub = $pub->safe_psql($db, recount_sql());
	my $on_sub =
	  $maintained
	  ? maintained_exact($sub, $db, "subscriber, $label")
	  : fallback_exact($sub, $db, "subscriber, $label");
	is($on_sub, $on_pub, "subscriber, $label: its recount equals the publisher's");
	return $on_sub;
}

my $initial = replicated('initial copy', 1);
my ($ij, $io) = recount_size($initial);
ok($ij >= 3 && $io > 50, "the initial copy brought jobs and objects ($ij, $io)");

$pub->safe_psql($db, batch_sql('lr1'));
$pub->safe_psql($db,
	"UPDATE job_objects SET status = 'failed' WHERE job_id = 'ffffffff-0000-4000-8000-000000000001'");
my $lr1 = replicated('inserts, updates, a multi-row update, moves and deletes', 1);
isnt($lr1, $initial, '... which changed the counts');

# ENABLE TRIGGER ALL on the subscriber: the triggers become ORIGIN, which apply does not fire.
($r, $o, $e) = psql_result($sub, $db, 'ALTER TABLE job_objects ENABLE TRIGGER ALL');
is($r, 0, 'subscriber: ALTER TABLE job_objects ENABLE TRIGGER ALL') or diag($e);
like($e, $warning_re, 'subscriber: ... gives the WARNING');
is($sub->safe_psql($db, 'SELECT counter_maintenance()'), 'f', '... counter_maintenance() is false');
($r, $o, $e) = psql_result($sub, $db, 'ALTER TABLE findings ENABLE TRIGGER ALL');
is($r, 0, 'subscriber: ALTER TABLE findings ENABLE TRIGGER ALL') or diag($e);
is($sub->safe_psql($db, 'SELECT counter_maintenance()'), 'f', '... counter_maintenance() is false');
is( $sub->safe_psql($db,
		"SELECT count(*) FROM pg_trigger WHERE tgname ~ '_count_' AND tgenabled = 'O'"),
	'10', 'subscriber: the ten counter triggers are ORIGIN now');
fallback_exact($sub, $db, 'subscriber, right after ENABLE TRIGGER ALL');

$pub->safe_psql($db, batch_sql('lr2'));
$pub->safe_psql($db,
	"UPDATE job_objects SET status = 'queued' WHERE job_id = 'ffffffff-0000-4000-8000-000000000001' AND key LIKE '%1%'"
);
my $lr2 = replicated('triggers ORIGIN, the publisher writes', 0);
isnt($lr2, $lr1, '... which changed the counts');
is($sub->safe_psql($db, 'SELECT counter_maintenance()'), 'f', '... counter_maintenance() still false');

$sub->safe_psql($db, 'SELECT set_counter_maintenance(true)');
replicated('after set_counter_maintenance(true)', 1);
$pub->safe_psql($db, batch_sql('lr3'));
$pub->safe_psql($db, "DELETE FROM jobs WHERE job_id = md5('lr1-a')::uuid");
my $lr3 = replicated('maintained again, the publisher writes', 1);
isnt($lr3, $lr2, '... which changed the counts');

$sub->stop;
$pub->stop;

# =================================================================================================
# (c) a publication FOR ALL TABLES and the refresh worker
# =================================================================================================

my $all = new_s3scan_node('allpub', preload => 1, allows_streaming => 'logical',
	conf => $common . "s3scan_jobs.database = '$db'\n");
$all->start;
$all->safe_psql('postgres', "CREATE DATABASE $db");
$all->safe_psql($db, 'CREATE EXTENSION s3scan_jobs');
is($all->safe_psql($db, "SELECT relreplident FROM pg_class WHERE oid = 'job_counter_deltas'::regclass"),
	'f', 'job_counter_deltas has REPLICA IDENTITY FULL');
$log_offset = log_size($all);
$all->safe_psql($db, 'CREATE PUBLICATION all_pub FOR ALL TABLES');
is( $all->safe_psql($db,
		"SELECT count(*) FROM pg_publication_tables WHERE pubname = 'all_pub' AND tablename = 'job_counter_deltas'"),
	'1', 'the publication publishes job_counter_deltas');
my $max_hist = $all->safe_psql($db, 'SELECT coalesce(max(id), 0) FROM refresh_history');

my $counts = maintained_exact($all, $db, 'FOR ALL TABLES, before the writes');
for my $round (1 .. 2)
{
	$all->safe_psql($db, batch_sql("all$round"));
	$all->safe_psql($db,
		"UPDATE job_objects SET status = 'succeeded' WHERE job_id = md5('all$round-b')::uuid AND status = 'queued'");
	ok(defined wait_for($all, $db, 'SELECT count(*) = 0 FROM job_counter_deltas'),
		"FOR ALL TABLES, round $round: the worker folds every delta without help");
	# Only folds write job_counters and delete deltas (nothing here repairs): with no delta left,
	# job_counters alone counts the round's writes, so the worker folded them.
	my $folded = maintained_exact($all, $db, "FOR ALL TABLES, round $round, folded");
	is($all->safe_psql($db, 'SELECT count(*) FROM job_counter_deltas'),
		'0', "FOR ALL TABLES, round $round: ... so job_counters alone equals the recount");
	isnt($folded, $counts, "FOR ALL TABLES, round $round: ... which the writes changed");
	$counts = $folded;
}
# A refresh that started after the writes (so after the publication, and with a fold first). The
# worker may have refreshed the rounds already, and with nothing changed since, its passes are
# 'unchanged': one more write, with a delta for that refresh to fold. (The refresh that sees it
# may start before a look at the clock after its commit: the clock is read before it.)
my $writes_done = $all->safe_psql($db, 'SELECT clock_timestamp()');
$all->safe_psql($db,
	"UPDATE job_objects SET status = 'failed' WHERE job_id = md5('all2-b')::uuid AND key = 'all2-4'");
ok( defined wait_for(
		$all, $db,
		"SELECT count(*) > 0 FROM refresh_history WHERE id > $max_hist AND started_at > '$writes_done'
		   AND origin = 'worker' AND outcome = 'refreshed'"
	),
	'FOR ALL TABLES: the worker refreshes after the writes');
ok(defined wait_for($all, $db, "SELECT outcome FROM refresh_job_progress()", 'refreshed'),
	"FOR ALL TABLES: refresh_job_progress() returns 'refreshed'");
is(matview_diffs($all, $db), '', 'FOR ALL TABLES: job_progress equals the recount');
is( $all->safe_psql($db,
		"SELECT count(*) FROM refresh_history WHERE id > $max_hist AND outcome = 'failed'"),
	'0', 'FOR ALL TABLES: no failed refresh');
my $log = log_since($all, $log_offset);
unlike($log, qr/does not have a replica identity/, 'FOR ALL TABLES: no replica identity error in the log');
my @worker_errors = grep {/\Q$WORKER_TYPE\E.*(ERROR|FATAL)/} split /\n/, $log;
is(scalar(@worker_errors), 0, 'FOR ALL TABLES: the refresh worker logged no error')
  or diag(join("\n", @worker_errors[ 0 .. ($#worker_errors > 9 ? 9 : $#worker_errors) ]));
$all->stop;

done_testing();
