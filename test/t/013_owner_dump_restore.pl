# pg_dump / pg_restore by a database owner who is not a superuser (the managed-server case): every
# row of jobs, job_objects, findings and refresh_history, and the sequences, come back, and
# job_status counts equal the source's. What it takes, as the README says:
#   - source: the owner can read the extension's tables and sequences (a superuser granted
#     SELECT on jobs, job_objects, findings, refresh_history and the sequences, beyond the README's
#     application grants);
#   - target: a superuser creates the database for the owner, creates the extension in it, and
#     grants the owner INSERT on those four tables and UPDATE on the sequences;
#   - the owner restores with pg_restore --no-comments (COMMENT ON EXTENSION is the superuser's);
#     the extension itself is skipped (the dump says CREATE EXTENSION IF NOT EXISTS).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use S3ScanTAP;

my $node = new_s3scan_node('ownerdump');
$node->start;
my $bindir = $node->config_data('--bindir');
my $tmp    = PostgreSQL::Test::Utils::tempdir;

# What a superuser grants the (non-superuser) owner in a database with the extension.
my $grants = q{
GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_objects, findings, refresh_history TO app_owner;
GRANT SELECT, USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public TO app_owner;
GRANT SELECT ON job_summary, job_progress, job_progress_live, active_jobs_progress, materialized_view_refresh_log TO app_owner;
GRANT EXECUTE ON FUNCTION refresh_job_progress() TO app_owner;
};

$node->safe_psql('postgres', 'CREATE ROLE app_owner LOGIN; CREATE DATABASE src OWNER app_owner');
$node->safe_psql('src', "CREATE EXTENSION s3scan_jobs; $grants");
is($node->safe_psql('src', "SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'"), 'f',
	'the owner is not a superuser');

my @jobs = map { sprintf('eeeeeeee-0000-4000-8000-%012d', $_) } 1 .. 4;
add_job($node, 'src', $jobs[0], 30, 5);
add_job($node, 'src', $jobs[1], 12, 0);
add_job($node, 'src', $jobs[2], 0,  0);
$node->safe_psql('src', "SELECT refresh_job_progress()", extra_params => [ '-U', 'app_owner' ]);
add_job($node, 'src', $jobs[3], 7, 3);
$node->safe_psql('src', qq{
UPDATE job_objects SET status = 'failed', last_error = 'AccessDenied' WHERE job_id = '$jobs[1]' AND key LIKE '%obj-1';
DELETE FROM findings WHERE id IN (SELECT id FROM findings ORDER BY id DESC LIMIT 1);
SELECT refresh_job_progress();
}, extra_params => [ '-U', 'app_owner' ]);

my %order = (jobs => 'job_id', job_objects => 'id', findings => 'id', refresh_history => 'id');
sub rows
{
	my ($db, $table) = @_;
	return $node->safe_psql($db, "SELECT t::text FROM $table t ORDER BY $order{$table}");
}
sub counts
{
	my ($db) = @_;
	return $node->safe_psql($db,
		"SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
		        s.failed_count, s.total_findings, s.progress_percent, s.status
		 FROM jobs j, job_status(j.job_id, true) s ORDER BY 1");
}
my %src = map { $_ => rows('src', $_) } keys %order;
my $src_counts = counts('src');

# --- the owner dumps -------------------------------------------------------------------------
my $dump = "$tmp/src.dump";
my ($out, $err) = ('', '');
ok( IPC::Run::run(
		[ "$bindir/pg_dump", '-Fc', '-f', $dump, '-d', $node->connstr('src'), '-U', 'app_owner' ],
		'>', \$out, '2>', \$err),
	'pg_dump by the owner succeeds') or diag($err);

# --- a superuser prepares the target, the owner restores ------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE dst OWNER app_owner');
$node->safe_psql('dst', "CREATE EXTENSION s3scan_jobs; $grants");
($out, $err) = ('', '');
ok( IPC::Run::run(
		[ "$bindir/pg_restore", '--no-comments', '--exit-on-error', '-U', 'app_owner', '-d',
		  $node->connstr('dst'), $dump ],
		'>', \$out, '2>', \$err),
	'pg_restore by the owner succeeds') or diag($err);
is($err, '', 'with no error or warning');

for my $table (sort keys %order)
{
	my $dst = rows('dst', $table);
	ok($dst eq $src{$table}, "$table: every row back") or diag("source:\n$src{$table}\nrestored:\n$dst");
}
is(counts('dst'), $src_counts, 'job_status (real time) counts equal the source');
is($node->safe_psql('dst', 'SELECT outcome FROM refresh_job_progress()', extra_params => [ '-U', 'app_owner' ]),
	'refreshed', 'the owner refreshes the restored database');
is( $node->safe_psql('dst',
		"SELECT s.job_id, s.total_objects, s.queued_count, s.processing_count, s.succeeded_count,
		        s.failed_count, s.total_findings, s.progress_percent, s.status
		 FROM jobs j, job_status(j.job_id) s ORDER BY 1"),
	$src_counts, 'job_status (cached) counts equal the source after the refresh');
for my $t (qw(job_objects findings refresh_history))
{
	my $seq = $node->safe_psql('src', "SELECT pg_get_serial_sequence('$t', 'id')");
	cmp_ok($node->safe_psql('dst', "SELECT last_value FROM $seq"), '>=',
		$node->safe_psql('src', "SELECT last_value FROM $seq"), "$t: the sequence continues");
}
my ($r, $o, $e) = psql_result($node, 'dst', qq{
INSERT INTO job_objects (job_id, bucket, key, etag, status) VALUES ('$jobs[2]', 'b', 'new', 'e', 'queued');
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, byte_offset) VALUES ('$jobs[2]', 'b', 'new', 'e', 'd', '*', 1);
}, extra_params => [ '-U', 'app_owner' ]);
is($r, 0, 'new rows insert without colliding with restored ids') or diag($e);

$node->stop;
done_testing();
