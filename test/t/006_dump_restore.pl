# pg_dump -Fc / pg_restore round trip into a new database: the rows of
# jobs, job_objects, findings and refresh_history come back unchanged, the
# sequences come back so that new rows do not collide with restored ids,
# and job_status answers correctly in the restored database.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node('dump');
$node->start;
my $bindir = $node->config_data('--bindir');
my $tmp    = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src',      'CREATE EXTENSION s3scan_jobs');

my @jobs = (
	'aaaaaaaa-0000-0000-0000-000000000001',
	'aaaaaaaa-0000-0000-0000-000000000002',
	'aaaaaaaa-0000-0000-0000-000000000003',
	'aaaaaaaa-0000-0000-0000-000000000004');
add_job($node, 'src', $jobs[0], 40, 7);
add_job($node, 'src', $jobs[1], 12, 0);
$node->safe_psql('src', "SELECT refresh_job_progress()");
add_job($node, 'src', $jobs[2], 0,  0);
add_job($node, 'src', $jobs[3], 5,  2);
$node->safe_psql(
	'src', qq{
-- a job without execution_arn, created the client's other way
INSERT INTO jobs (job_id, bucket, prefix, created_at)
  VALUES ('aaaaaaaa-0000-0000-0000-000000000005', 'other', '', now());
-- status changes (the updated_at trigger fires)
UPDATE job_objects SET status = 'succeeded', last_error = NULL, updated_at = now()
 WHERE job_id = '$jobs[0]' AND key IN ('scan/$jobs[0]/obj-1', 'scan/$jobs[0]/obj-2');
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied', updated_at = now()
 WHERE job_id = '$jobs[1]' AND key = 'scan/$jobs[1]/obj-4';
-- gaps at the end of the sequences: restored ids must not be reused
DELETE FROM job_objects WHERE id IN (SELECT id FROM job_objects ORDER BY id DESC LIMIT 3);
DELETE FROM findings WHERE id IN (SELECT id FROM findings ORDER BY id DESC LIMIT 2);
DELETE FROM jobs WHERE job_id = '$jobs[3]';
});
$node->safe_psql('src', 'SELECT refresh_job_progress()');
$node->safe_psql('src', 'REFRESH MATERIALIZED VIEW CONCURRENTLY job_progress');
$node->safe_psql('src', 'SELECT refresh_job_progress()');

my %order = (
	jobs            => 'job_id',
	job_objects     => 'id',
	findings        => 'id',
	refresh_history => 'id');

sub table_rows
{
	my ($db, $table) = @_;
	return $node->safe_psql($db,
		"SELECT t::text FROM $table AS t ORDER BY $order{$table}");
}

# Every column of job_status except data_source and cache_timestamp.
my $js_cols = 'job_id, bucket, prefix, execution_arn, created_at, updated_at, total_objects, '
  . 'queued_count, processing_count, succeeded_count, failed_count, total_findings, '
  . 'progress_percent, status';

sub job_status_rows
{
	my ($db, $real_time) = @_;
	return $node->safe_psql($db,
		"SELECT s.* FROM jobs j, LATERAL (SELECT $js_cols FROM job_status(j.job_id, $real_time)) s ORDER BY j.job_id"
	);
}

my %src_rows = map { $_ => table_rows('src', $_) } keys %order;
cmp_ok(scalar(split /\n/, $src_rows{refresh_history}), '>=', 4, 'source has refresh history');
my $src_status = job_status_rows('src', 'true');
my $src_summary = $node->safe_psql('src', 'SELECT s::text FROM job_summary s ORDER BY job_id');

# --- dump and restore --------------------------------------------------------

my $dump = "$tmp/src.dump";
$node->command_ok([ "$bindir/pg_dump", '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc of the source database');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
my ($stdout, $stderr) = ('', '');
my $ok = IPC::Run::run(
	[ "$bindir/pg_restore", '--exit-on-error', '-d', $node->connstr('dst'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($ok, 'pg_restore into a new database succeeds') or diag($stderr);
is($stderr, '', 'pg_restore reports no errors or warnings');

is($node->safe_psql('dst', "SELECT extname FROM pg_extension WHERE extname = 's3scan_jobs'"),
	's3scan_jobs', 'the restored database has the extension');

for my $table (sort keys %order)
{
	my $dst = table_rows('dst', $table);
	ok($dst eq $src_rows{$table}, "$table: the same rows after restore")
	  or diag("source:\n$src_rows{$table}\nrestored:\n$dst");
}

is($node->safe_psql('dst', 'SELECT s::text FROM job_summary s ORDER BY job_id'),
	$src_summary, 'job_summary answers the same in the restored database');

# --- job_status works in the restored database ------------------------------

is(job_status_rows('dst', 'true'), $src_status,
	'job_status(real_time => true) answers as in the source');
is(job_status_rows('dst', 'false'), $src_status,
	'job_status() answers as in the source before any refresh in the restored database');
is( $node->safe_psql('dst',
		"SELECT count(*) FROM job_status('aaaaaaaa-0000-0000-0000-000000000004')"),
	'0',
	'a job deleted before the dump does not exist');

my $maxh = $node->safe_psql('dst', 'SELECT max(id) FROM refresh_history');
is( $node->safe_psql('dst', 'SELECT outcome FROM refresh_job_progress()'),
	'refreshed', 'refresh_job_progress() works in the restored database');
is( $node->safe_psql('dst',
		"SELECT count(*) FROM refresh_history WHERE id > $maxh AND outcome = 'refreshed' AND origin = 'sql'"),
	'1',
	'the refresh is recorded with a new history id');
is(job_status_rows('dst', 'false'), $src_status,
	'job_status() after a refresh answers as in the source');
is( $node->safe_psql('dst',
		"SELECT DISTINCT data_source FROM jobs j, job_status(j.job_id)"),
	'cached',
	'after the refresh job_status answers from the cache');

# --- new rows do not collide with restored ids --------------------------------

my %max = map {
	$_ => $node->safe_psql('src', "SELECT max(id) FROM $_")
} qw(job_objects findings refresh_history);

my ($r, $o, $e) = psql_result(
	$node, 'dst', qq{
BEGIN;
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  SELECT '$jobs[1]', 'bucket-tap', 'scan/new-' || g, 'e' || g, 'queued', now()
  FROM generate_series(1, 20) g
  ON CONFLICT DO NOTHING;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  SELECT '$jobs[1]', 'bucket-tap', 'scan/new-' || g, 'e' || g, 'ssn', '***-**-1234', NULL, g, now()
  FROM generate_series(1, 20) g
  ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
COMMIT;
SELECT count(*) FROM job_objects WHERE key LIKE 'scan/new-%';
SELECT count(*) FROM findings WHERE key LIKE 'scan/new-%';
});
is($r, 0, 'new objects and findings insert without a unique violation') or diag($e);
is($o, "20\n20", 'all new rows were inserted (none dropped as conflicts)');
is( $node->safe_psql('dst',
		"SELECT min(id) > $max{job_objects} FROM job_objects WHERE key LIKE 'scan/new-%'"),
	't',
	'new object ids continue after the restored ones');
is( $node->safe_psql('dst',
		"SELECT min(id) > $max{findings} FROM findings WHERE key LIKE 'scan/new-%'"),
	't',
	'new finding ids continue after the restored ones');
for my $seq_table (qw(job_objects findings refresh_history))
{
	my $q = "SELECT last_value FROM " . $node->safe_psql('src',
		"SELECT pg_get_serial_sequence('$seq_table', 'id')");
	cmp_ok($node->safe_psql('dst', $q), '>=', $node->safe_psql('src', $q),
		"$seq_table: the sequence is restored");
}

for (1 .. 3)
{
	is($node->safe_psql('dst', 'SELECT outcome FROM refresh_job_progress()'),
		'refreshed', 'further refreshes record history without collisions');
}
is( $node->safe_psql('dst', "SELECT total_objects FROM job_status('$jobs[1]')"),
	'32', 'job_status sees the new objects after a refresh');

$node->stop;
done_testing();
