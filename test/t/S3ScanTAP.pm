# Helpers shared by the s3scan_jobs TAP tests (test/t/NNN_topic.pl).
#
# Every wait here is bounded polling with a deadline: a test waits for an
# event, never for a fixed time.  The only fixed windows are in
# stays_true(), which checks that something does NOT happen (no second
# worker, no new history rows, no log flood) and therefore needs an
# observation period; those windows are a few seconds, several times the
# refresh interval the tests configure.

package S3ScanTAP;

use strict;
use warnings;

use Exporter 'import';
use Time::HiRes qw(usleep time);
use Test::More;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(
  new_s3scan_node wait_for wait_for_cond stays_true elapsed_since
  log_size log_since log_lines worker_pids worker_pid status_row
  psql_result add_job $WAIT_TIMEOUT $WORKER_TYPE $LAUNCHER_TYPE
);

# Generous deadline for every wait: a loaded 2-core machine must pass.
our $WAIT_TIMEOUT  = 60;
our $WORKER_TYPE   = 's3scan_jobs refresh worker';
our $LAUNCHER_TYPE = 's3scan_jobs launcher';

# A node with the settings every test wants; %opts:
#   preload => 1 (shared_preload_libraries = 's3scan_jobs') or a string
#   conf    => extra postgresql.conf text
#   allows_streaming => passed to init
sub new_s3scan_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{allows_streaming} // 0);

	# Backend type in every log line, so a failure shows who logged what;
	# no statement logging (the tests poll, and the log is searched for
	# the worker's own messages).
	my $conf = "log_line_prefix = '%m [%p] %b %q%a '\n"
	  . "log_statement = none\n"
	  . "max_parallel_workers_per_gather = 0\n";
	if ($opts{preload})
	{
		my $libs = $opts{preload} eq '1' ? 's3scan_jobs' : $opts{preload};
		$conf .= "shared_preload_libraries = '$libs'\n";
	}
	$conf .= $opts{conf} if defined $opts{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node;
}

# Run $sql repeatedly until its output equals $expected (default 't'),
# for at most $timeout seconds.  Returns the seconds it took, or undef on
# timeout (after printing the last output).  Errors from $sql count as
# "not yet" (the object may not exist yet).
sub wait_for
{
	my ($node, $db, $sql, $expected, $timeout) = @_;
	$expected //= 't';
	$timeout  //= $WAIT_TIMEOUT;
	my $start = time();
	my ($ret, $out, $err);
	while (1)
	{
		($ret, $out, $err) = $node->psql($db, $sql, timeout => $timeout);
		$out //= '';
		$err //= '';
		return time() - $start if defined $ret && $ret == 0 && $out eq $expected;
		last if time() - $start > $timeout;
		usleep(100_000);
	}
	diag("wait_for timed out after ${timeout}s on [$db]: $sql\n"
		  . "expected: $expected\nlast output: $out\nlast stderr: $err");
	return undef;
}

# Poll a perl condition (a sub returning true when done) with a deadline.
sub wait_for_cond
{
	my ($cond, $timeout, $what) = @_;
	$timeout //= $WAIT_TIMEOUT;
	my $start = time();
	while (1)
	{
		return time() - $start if $cond->();
		last if time() - $start > $timeout;
		usleep(100_000);
	}
	diag("timed out after ${timeout}s waiting for: " . ($what // 'condition'));
	return undef;
}

# Check that $cond stays true for $seconds (sampled every 0.2 s).  Used
# only for "this must not happen" assertions.  Returns 1 or 0.
sub stays_true
{
	my ($cond, $seconds, $what) = @_;
	my $end = time() + $seconds;
	while (time() < $end)
	{
		if (!$cond->())
		{
			diag("stopped holding: " . ($what // 'condition'));
			return 0;
		}
		usleep(200_000);
	}
	return $cond->() ? 1 : 0;
}

sub elapsed_since { return time() - $_[0]; }

sub log_size { return -s $_[0]->logfile; }

sub log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# Lines of the server log after $offset that match $re.
sub log_lines
{
	my ($node, $offset, $re) = @_;
	return grep { /$re/ } split /\n/, log_since($node, $offset);
}

# Pids of the refresh workers (optionally only those in database $served).
sub worker_pids
{
	my ($node, $served) = @_;
	my $filter = defined $served ? " AND datname = '$served'" : '';
	my $out = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = '$WORKER_TYPE'$filter ORDER BY pid"
	);
	return grep { $_ ne '' } split /\n/, $out;
}

# The single worker pid serving $served; undef when none (dies if two).
sub worker_pid
{
	my ($node, $served) = @_;
	my @pids = worker_pids($node, $served);
	die "more than one refresh worker for $served: @pids" if @pids > 1;
	return $pids[0];
}

# refresh_worker_status row for database $served, read in $db, as a hash.
sub status_row
{
	my ($node, $db, $served) = @_;
	my @cols = qw(database pid state started_by last_refresh_start
	  last_refresh_duration_ms last_refresh_outcome last_error
	  consecutive_failures next_refresh_due);
	my $sel = join(', ', map { "coalesce(${_}::text, '<null>')" } @cols);
	my $out = $node->safe_psql($db,
		"SELECT $sel FROM refresh_worker_status WHERE database = '$served'",
		extra_params => [ '-F', "\x1f" ]);
	return undef if $out eq '';
	my @rows = split /\n/, $out;
	die "refresh_worker_status has " . scalar(@rows) . " rows for $served"
	  if @rows != 1;
	my @vals = split /\x1f/, $rows[0], -1;
	my %h;
	@h{@cols} = map { $_ eq '<null>' ? undef : $_ } @vals;
	return \%h;
}

# Run $sql with verbose errors (so stderr carries the SQLSTATE); returns
# (exit code, stdout, stderr).  Never dies on an SQL error; a statement
# that hangs past the timeout (default $WAIT_TIMEOUT) gives exit code -1
# and stderr 'timed out'.
sub psql_result
{
	my ($node, $db, $sql, %params) = @_;
	my $timed_out = 0;
	my ($ret, $out, $err) = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		%params,
		timeout   => $params{timeout} // $WAIT_TIMEOUT,
		timed_out => \$timed_out);
	return (-1, $out // '', "timed out after "
		  . ($params{timeout} // $WAIT_TIMEOUT) . "s: "
		  . ($err // ''))
	  if $timed_out;
	return ($ret, $out // '', $err // '');
}

# Insert a job with $n objects (statuses cycle through the four values)
# and $nf findings.  Returns the job id.
sub add_job
{
	my ($node, $db, $job_id, $n, $nf) = @_;
	$nf //= 0;
	$node->safe_psql(
		$db, qq{
INSERT INTO jobs (job_id, bucket, prefix, execution_arn, created_at)
  VALUES ('$job_id', 'bucket-tap', 'scan/', 'arn:aws:states:tap', now());
INSERT INTO job_objects (job_id, bucket, key, etag, status, updated_at)
  SELECT '$job_id', 'bucket-tap', 'scan/$job_id/obj-' || g, 'etag-' || g,
         (ARRAY['queued','processing','succeeded','failed'])[1 + g % 4], now()
  FROM generate_series(1, $n) AS g;
INSERT INTO findings (job_id, bucket, key, etag, detector, masked_match, context, byte_offset, created_at)
  SELECT '$job_id', 'bucket-tap', 'scan/$job_id/obj-' || g, 'etag-' || g, 'email',
         'a***\@example.com', 'ctx ' || g, g * 10, now()
  FROM generate_series(1, $nf) AS g;
});
	return $job_id;
}

1;
