# Many scanner workers at once, as the clients run them: 100 connections
# move the objects of ONE job through their statuses (the per-object UPDATE
# in its own transaction), insert findings for it in batches and read
# job_status, while the refresh worker refreshes job_progress every second.
# Nothing fails (no deadlock, no serialization error, no error in the log),
# the worker keeps refreshing, and afterwards every count is exact:
# job_status in real time and from a fresh cache both equal a plain count.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $clients = 100;
my $seconds = 6;
my $job     = 'cccccccc-0000-4000-8000-000000000001';

my $node = new_s3scan_node(
	'writers',
	preload => 1,
	conf    => "s3scan_jobs.refresh_interval = '1s'\n"
	  . "max_connections = 130\n"
	  . "synchronous_commit = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION s3scan_jobs');
add_job($node, 'postgres', $job, 2000, 0);
ok( defined wait_for(
		$node, 'postgres',
		"SELECT count(*) > 0 FROM refresh_history WHERE origin = 'worker' AND outcome = 'refreshed'"),
	'the worker refreshes before the load starts');

my $tmp = PostgreSQL::Test::Utils::tempdir;

# The clients' statements, one object per transaction; statuses go queued ->
# processing -> succeeded or failed, retried objects back to processing.
PostgreSQL::Test::Utils::append_to_file(
	"$tmp/update.sql", qq{
\\set n random(1, 2000)
\\set s random(1, 3)
UPDATE job_objects SET status = (ARRAY['processing', 'succeeded', 'failed'])[:s], last_error = NULL, updated_at = now()
  WHERE job_id = '$job' AND bucket = 'bucket-tap' AND key = 'scan/$job/obj-' || :n AND etag = 'etag-' || :n;
});
PostgreSQL::Test::Utils::append_to_file(
	"$tmp/findings.sql", qq{
\\set n random(1, 2000)
\\set o random(1, 50)
BEGIN;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  SELECT '$job', 'bucket-tap', 'scan/$job/obj-' || :n, 'etag-' || :n, 'iban', 'DE** ****', 'ctx', :o * 100 + g, now()
  FROM generate_series(1, 100) g
  ON CONFLICT (bucket, key, etag, detector, byte_offset) DO NOTHING;
COMMIT;
});
PostgreSQL::Test::Utils::append_to_file(
	"$tmp/status.sql", qq{
SELECT status, data_source FROM job_status('$job');
});

my $log_offset   = log_size($node);
my $history_mark = $node->safe_psql('postgres', 'SELECT coalesce(max(id), 0) FROM refresh_history');
my $bindir       = $node->config_data('--bindir');
my ($stdout, $stderr);
my $ok = IPC::Run::run(
	[
		"$bindir/pgbench", '-n', '-M', 'prepared', '-c', $clients, '-j', '2',
		'-T', $seconds, '-f', "$tmp/update.sql\@90", '-f', "$tmp/findings.sql\@2",
		'-f', "$tmp/status.sql\@8", '-h', $node->host, '-p', $node->port, 'postgres'
	],
	'>', \$stdout, '2>', \$stderr);
ok($ok, "pgbench with $clients clients on one job ran to the end")
  or diag("stdout:\n$stdout\nstderr:\n$stderr");
like($stdout, qr/number of failed transactions: 0 /, 'no transaction failed');
unlike($stderr, qr/ERROR|aborted/, 'no client saw an error');
my ($tps) = $stdout =~ /tps = ([0-9.]+)/;
note("throughput: " . ($tps // '?') . " transactions/s");

my @errors = log_lines($node, $log_offset, qr/ERROR|FATAL|PANIC|deadlock/);
is(scalar(@errors), 0, 'no error, deadlock or crash in the server log')
  or diag(join("\n", @errors[0 .. ($#errors > 9 ? 9 : $#errors)]));
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FILTER (WHERE outcome = 'refreshed') > 0 AND count(*) FILTER (WHERE outcome = 'failed') = 0
		   FROM refresh_history WHERE origin = 'worker' AND id > $history_mark"),
	't', 'the worker kept refreshing under the load, without a failure');

# Exact afterwards: real time and a fresh cache equal a plain count.
my $truth = $node->safe_psql(
	'postgres', qq{
SELECT count(*), count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'processing'),
       count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
       (SELECT count(*) FROM findings WHERE job_id = '$job')
FROM job_objects WHERE job_id = '$job'});
my $columns =
  'total_objects, queued_count, processing_count, succeeded_count, failed_count, total_findings';
is($node->safe_psql('postgres', "SELECT $columns FROM job_status('$job', true)"),
	$truth, 'real-time job_status equals a plain count');
# (if the worker is refreshing at that moment this one skips: it is tried until it refreshes)
ok(defined wait_for($node, 'postgres', "SELECT outcome = 'refreshed' FROM refresh_job_progress()"),
	'the final refresh refreshed');
is($node->safe_psql('postgres', "SELECT $columns FROM job_status('$job') WHERE data_source = 'cached'"),
	$truth, 'job_status from a fresh cache equals it too');
my @truth = split /\|/, $truth;
cmp_ok($truth[0] - $truth[1], '>', 0, 'the load moved objects out of queued');

$node->stop;
done_testing();
