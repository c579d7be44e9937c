# A distributed database under what its users and DBAs do to it:
#  - writers over every shard (inserts, status updates, deletes, rollbacks, savepoints, a job
#    deleted and created again) leave every job exact;
#  - ALTER EXTENSION UPDATE on the coordinator reaches every node;
#  - writes sent through a worker node get ids from the node's own range and are counted;
#  - a shard group moved to the other worker (logical replication) while they write: still exact,
#    nothing counted twice by the move's apply;
#  - a worker node stopped in the middle of a transaction that wrote to both workers: its COMMIT
#    fails with a clear error, nothing of it is counted, writes to the other worker's shards go on;
#    once the node is back, everything is exact;
#  - pg_dump of the coordinator, restored into a database whose tables are distributed: the same
#    rows and counts; and back to one server (the findings through a table of one's own);
#  - DROP EXTENSION s3scan_jobs leaves no shard, no table and no Citus metadata of them behind.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use lib "$FindBin::RealBin/../t";
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;
use S3ScanCitus;

my ($coord, $w1, $w2) = new_citus_cluster('ops');
my @nodes = ($coord, $w1, $w2);

# An earlier version, updated on the cluster: Citus runs the update on every node.
$coord->safe_psql('postgres', "CREATE EXTENSION s3scan_jobs VERSION '1.3'");
$coord->safe_psql('postgres', 'ALTER EXTENSION s3scan_jobs UPDATE');
is( join(' ', map { $_->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 's3scan_jobs'") } @nodes),
	'1.4 1.4 1.4', 'ALTER EXTENSION s3scan_jobs UPDATE on the coordinator updates every node');
$coord->safe_psql('postgres', 'SELECT distribute_job_tables(8)');

my $jobs = 8;
$coord->safe_psql('postgres', qq{
INSERT INTO jobs (job_id, bucket) SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'b'
  FROM generate_series(1, $jobs) i;
INSERT INTO job_objects (job_id, bucket, key, etag, status)
  SELECT j.job_id, 'b', 'k' || g, 'e', 'queued' FROM jobs j, generate_series(1, 200) g;
});

# --- writers ---------------------------------------------------------------------------------------

# One pgbench script per kind of write, plain values only (Citus 13.2.2 crashes deparsing an
# UPDATE that sets a column from an array subscript on a table with a CHECK constraint).
my $dir = PostgreSQL::Test::Utils::tempdir;
my $job = "('00000000-0000-4000-8000-' || lpad(:j::text, 12, '0'))::uuid";
my %scripts = (
	insert => "INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at) VALUES ($job, 'b', 'k' || :k, 'e', 'queued', now()) ON CONFLICT DO NOTHING;",
	processing => "UPDATE job_objects SET status = 'processing', last_error = NULL, updated_at = now() WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';",
	succeeded => "UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now() WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';",
	failed => "UPDATE job_objects SET status = 'failed', last_error = 'x', updated_at = now() WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';",
	remove => "DELETE FROM job_objects WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';",
	finding => "INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset, created_at) VALUES ($job, 'b', 'k' || :k, 'e', 'email', 'x', :k, now()) ON CONFLICT DO NOTHING;",
	rollback => "BEGIN;\nINSERT INTO job_objects (job_id, bucket, key, etag) VALUES ($job, 'b', 'rb' || :k, 'e') ON CONFLICT DO NOTHING;\nUPDATE job_objects SET status = 'failed' WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';\nROLLBACK;",
	savepoint => "BEGIN;\nINSERT INTO job_objects (job_id, bucket, key, etag) VALUES ($job, 'b', 'sp' || :k, 'e') ON CONFLICT DO NOTHING;\nSAVEPOINT s;\nUPDATE job_objects SET status = 'succeeded' WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';\nROLLBACK TO SAVEPOINT s;\nUPDATE job_objects SET status = 'processing' WHERE job_id = $job AND bucket = 'b' AND key = 'k' || (:k + 1) AND etag = 'e';\nCOMMIT;",
	twojobs => "BEGIN;\nUPDATE job_objects SET status = 'succeeded' WHERE job_id = $job AND bucket = 'b' AND key = 'k' || :k AND etag = 'e';\nINSERT INTO job_objects (job_id, bucket, key, etag) VALUES (('00000000-0000-4000-8000-' || lpad((:j % $jobs + 1)::text, 12, '0'))::uuid, 'b', 'tj' || :k, 'e') ON CONFLICT DO NOTHING;\nCOMMIT;");
my %weights = (insert => 4, processing => 4, succeeded => 4, failed => 1, remove => 1, finding => 2,
	rollback => 1, savepoint => 1, twojobs => 1);
my @script_args;
for my $name (sort keys %scripts)
{
	my $file = "$dir/$name.sql";
	open my $fh, '>', $file or die;
	print $fh "\\set j random(1, $jobs)\n\\set k random(1, 400)\n$scripts{$name}\n";
	close $fh;
	push @script_args, '-f', "$file\@$weights{$name}";
}

sub start_writers
{
	my ($seconds) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'pgbench', '-n', '-c', '4', '-j', '2', '-T', $seconds, @script_args,
		  '-h', $coord->host, '-p', $coord->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	return { handle => $h, out => \$out, err => \$err };
}

sub finish_writers
{
	my ($w) = @_;
	$w->{handle}->finish;
	my ($tx) = ${ $w->{out} } =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = ${ $w->{out} } =~ /number of failed transactions: (\d+)/;
	return ($tx // 0, $failed // 0, ${ $w->{err} });
}

my $writers = start_writers(8);
# A job deleted and created again while the others write.
sleep 2;
$coord->safe_psql('postgres', q{
DELETE FROM jobs WHERE job_id = '00000000-0000-4000-8000-000000000100';
INSERT INTO jobs (job_id, bucket) VALUES ('00000000-0000-4000-8000-000000000100', 'b');
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '00000000-0000-4000-8000-000000000100', 'b', 'x' || g, 'e' FROM generate_series(1, 30) g;
DELETE FROM jobs WHERE job_id = '00000000-0000-4000-8000-000000000100';
INSERT INTO jobs (job_id, bucket) VALUES ('00000000-0000-4000-8000-000000000100', 'b');
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '00000000-0000-4000-8000-000000000100', 'b', 'y' || g, 'e' FROM generate_series(1, 7) g;
});
my ($tx, $failed, $err) = finish_writers($writers);
cmp_ok($tx, '>', 100, "writers ran ($tx transactions)");
is($failed, 0, 'no writer transaction failed') or diag($err);
is(recount_differences($coord), '', 'every job is exact after the writers');
is($coord->safe_psql('postgres', "SELECT total_objects FROM job_status('00000000-0000-4000-8000-000000000100', true)"),
	'7', 'the job deleted and created again counts its new objects only');
ok(defined wait_for($coord, 'postgres', 'SELECT count(*) = 0 FROM job_counter_deltas'), 'the workers fold everything');
is(recount_differences($coord), '', 'and stay exact');

# --- writes through a worker node ---------------------------------------------------------------------------

# Each worker node's sequences hand out ids of their own range.
ok( defined wait_for(
		$w2, 'postgres',
		"SELECT count(*) = 2 FROM pg_sequences WHERE sequencename IN ('job_objects_id_seq', 'findings_id_seq')
		   AND min_value = ((SELECT groupid FROM pg_dist_local_group)::bigint << 48) + 1"),
	'a worker node\'s sequences have a range of their own');
my %ids;
for my $node ($coord, $w1, $w2)
{
	$ids{ $node->name } = $node->safe_psql('postgres', qq{
INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('@{[job_uuid(2)]}', 'b', 'via-@{[$node->name]}', 'e') RETURNING id});
}
is(scalar(keys %{ { map { ($_ >> 48) => 1 } values %ids } }), 3, 'ids written through each node come from three ranges')
  or diag(join(' ', %ids));
is(recount_differences($coord), '', 'and every write through a worker node is counted');

# --- a shard move under load --------------------------------------------------------------------------

my $moved_job = job_uuid(1);
my ($shard, $from_port) = split /\|/, $coord->safe_psql('postgres', qq{
SELECT s.shardid, n.nodeport FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid)
WHERE s.shardid = get_shard_id_for_distribution_column('jobs', '$moved_job')});
my $to = $from_port == $w1->port ? $w2 : $w1;
$writers = start_writers(10);
sleep 2;
my ($rc, $out, $move_err) = $coord->psql('postgres',
	"SELECT citus_move_shard_placement($shard, '" . $coord->host . "', $from_port, '" . $to->host . "', " . $to->port
	  . ", shard_transfer_mode => 'force_logical')");
is($rc, 0, 'the shard group of a job moves to the other worker while writers write') or diag($move_err);
($tx, $failed, $err) = finish_writers($writers);
is($failed, 0, "no writer transaction failed during the move ($tx transactions)") or diag($err);
is( $coord->safe_psql('postgres', qq{
SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
WHERE p.shardid = get_shard_id_for_distribution_column('job_counter_deltas', '$moved_job')}),
	$to->port, 'the deltas moved with it');
is(recount_differences($coord), '', 'every job is exact after the move (its apply counted nothing twice)');

# --- a worker node stopped mid-transaction -------------------------------------------------------------

# Two jobs, one on each worker.
my ($on_w1, $on_w2);
for my $n (1 .. $jobs)
{
	my $port = $coord->safe_psql('postgres', qq{
SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
WHERE p.shardid = get_shard_id_for_distribution_column('jobs', '@{[job_uuid($n)]}')});
	$on_w1 //= job_uuid($n) if $port == $w1->port;
	$on_w2 //= job_uuid($n) if $port == $w2->port;
}
ok(defined $on_w1 && defined $on_w2, 'a job on each worker');
my $counts = sub {
	$coord->safe_psql('postgres',
		"SELECT (SELECT total_objects FROM job_status('$on_w1', true)), (SELECT total_objects FROM job_status('$on_w2', true))");
};
my $before = $counts->();
my $session = $coord->background_psql('postgres', on_error_stop => 0);
$session->query_safe(qq{BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$on_w1', 'b', 'down' || g, 'e' FROM generate_series(1, 50) g;
INSERT INTO job_objects (job_id, bucket, key, etag) SELECT '$on_w2', 'b', 'down' || g, 'e' FROM generate_series(1, 50) g;});
$w2->stop('immediate');
my $commit = $session->query('COMMIT');
$session->quit;
my ($w1_rc, $w1_out, $w1_err) = $coord->psql('postgres',
	"INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('$on_w1', 'b', 'while-down', 'e')");
is($w1_rc, 0, 'while a worker is down, writes to the other worker\'s shards go on') or diag($w1_err);
my ($w2_rc, $w2_out, $w2_err) = $coord->psql('postgres',
	"INSERT INTO job_objects (job_id, bucket, key, etag) VALUES ('$on_w2', 'b', 'while-down', 'e')");
isnt($w2_rc, 0, 'and writes to its own shards fail');
like($w2_err, qr/connection to the remote node|could not connect|terminating connection/, 'with a clear error');
$w2->start;
ok( defined wait_for(
		$coord, 'postgres',
		"SELECT count(*) = 0 FROM pg_prepared_xacts") && defined wait_for($w1, 'postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts')
	  && defined wait_for($w2, 'postgres', 'SELECT count(*) = 0 FROM pg_prepared_xacts'),
	'no prepared transaction is left once the node is back (Citus recovers them)');
my ($a1, $a2) = split /\|/, $before;
my $after = $counts->();
ok($after eq join('|', $a1 + 1, $a2) || $after eq join('|', $a1 + 51, $a2 + 50),
	"the interrupted transaction counts wholly or not at all ($before -> $after)");
is(recount_differences($coord), '', 'every job is exact after the node came back');

# --- pg_dump of the coordinator, restored into a distributed database --------------------------------------

# A new database with Citus, the same nodes, the extension distributed; pg_restore loads the rows
# of the dump's jobs, job_objects and findings and their sequences (not the refresh history of the
# old cache), and the shards count them as they arrive.
my $dump = "$dir/coordinator.dump";
$coord->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-h', $coord->host, '-p', $coord->port, 'postgres' ],
	'pg_dump of the coordinator');
for my $node (@nodes)
{
	$node->safe_psql('postgres', 'CREATE DATABASE restored');
	$node->safe_psql('restored', 'CREATE EXTENSION citus');
}
$coord->safe_psql('restored', "SELECT citus_set_coordinator_host('" . $coord->host . "', " . $coord->port . ")");
$coord->safe_psql('restored', "SELECT citus_add_node('" . $_->host . "', " . $_->port . ")") for ($w1, $w2);
$coord->safe_psql('restored', 'CREATE EXTENSION s3scan_jobs');
$coord->safe_psql('restored', 'SELECT distribute_job_tables(4)');
my ($restore_out, $restore_err) = ('', '');
my $restored_ok = IPC::Run::run(
	[ 'pg_restore', '--data-only', (map { ('-t', $_) } qw(jobs job_objects findings job_objects_id_seq findings_id_seq)),
	  '-d', 'restored', '-h', $coord->host, '-p', $coord->port, $dump ],
	'>', \$restore_out, '2>', \$restore_err);
ok($restored_ok, 'pg_restore --data-only of the three tables and their sequences succeeds') or diag($restore_err);
my $progress = 'SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings
	FROM job_progress_live ORDER BY job_id';
is($coord->safe_psql('restored', $progress), $coord->safe_psql('postgres', $progress),
	'the restored database has the same jobs and counts');
is($coord->safe_psql('restored', 'SELECT count(*) FROM job_objects'), $coord->safe_psql('postgres', 'SELECT count(*) FROM job_objects'),
	'and the same rows');
is($coord->safe_psql('restored', 'SELECT last_value FROM job_objects_id_seq'),
	$coord->safe_psql('postgres', 'SELECT last_value FROM job_objects_id_seq'), 'and the same sequence values');

# --- back to one server ----------------------------------------------------------------------------------------

# A database without Citus: the same dump's jobs and objects, the findings through a table of its
# own (two jobs may have the same finding, which the one-server key does not allow).
$coord->safe_psql('postgres', 'CREATE DATABASE single');
$coord->safe_psql('single', 'CREATE EXTENSION s3scan_jobs');
($restore_out, $restore_err) = ('', '');
$restored_ok = IPC::Run::run(
	[ 'pg_restore', '--data-only', (map { ('-t', $_) } qw(jobs job_objects job_objects_id_seq findings_id_seq)),
	  '-d', 'single', '-h', $coord->host, '-p', $coord->port, $dump ],
	'>', \$restore_out, '2>', \$restore_err);
ok($restored_ok, 'one server: pg_restore --data-only of jobs and objects') or diag($restore_err);
my $csv = "$dir/findings.csv";
$coord->safe_psql('postgres', "\\copy (SELECT * FROM findings ORDER BY id) TO '$csv' CSV");
$coord->safe_psql('single', "CREATE TABLE findings_in (LIKE findings);
\\copy findings_in FROM '$csv' CSV
INSERT INTO findings SELECT * FROM findings_in ON CONFLICT DO NOTHING;
DROP TABLE findings_in;");
my $objects = 'SELECT job_id, total_objects, queued_count, processing_count, succeeded_count, failed_count
	FROM job_progress_live ORDER BY job_id';
is($coord->safe_psql('single', $objects), $coord->safe_psql('postgres', $objects), 'one server: the same jobs and objects counts');
is( $coord->safe_psql('single', 'SELECT sum(total_findings) FROM job_progress_live'),
	$coord->safe_psql('postgres', 'SELECT count(DISTINCT (bucket, key, etag, detector, byte_offset)) FROM findings'),
	'one server: each finding once');
is($coord->safe_psql('single', 'SELECT count(*) FROM verify_job_counters()'), '0', 'one server: exact');

# --- DROP EXTENSION ---------------------------------------------------------------------------------------------

$coord->safe_psql('postgres', 'DROP EXTENSION s3scan_jobs');
for my $node (@nodes)
{
	is( $node->safe_psql('postgres', q{
SET citus.override_table_visibility = off;
SELECT count(*) FROM pg_class WHERE relname ~ '^(jobs|job_objects|findings|job_counters|job_counter_deltas)(_[0-9]+)?$'}),
		'0', $node->name . ': DROP EXTENSION leaves no table or shard behind');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_dist_shard'), '0', $node->name . ': nor shard metadata');
}
$coord->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM jobs'), '0', 'CREATE EXTENSION again starts empty, on one server');

$_->stop for ($coord, $w1, $w2);
done_testing();
