# A follower's watch on the lock outlives the API server's history: the
# server compacts and ends the watch; the follower resumes from the last
# resourceVersion it saw, is told 410 Expired (an ERROR event), reads the
# lock once and watches again from a resourceVersion the server still
# has: exactly one 410, then a watch that stays.  Asserted on the
# emulator's request log.  The lock is quiet (held by another for an
# hour), so the object's own resourceVersion is older than the compaction:
# the read that gives a usable one is a list (client-go's reflector lists
# with a field selector), or the new watch starts from none.

use Kle::Emulator;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

put_object('leases', 'default', 'w410', {
    apiVersion => 'coordination.k8s.io/v1', kind => 'Lease',
    metadata => { name => 'w410', namespace => 'default' },
    spec => { holderIdentity => 'other', leaseDurationSeconds => 3600,
              acquireTime => '2026-01-01T00:00:00.000000Z',
              renewTime => '2026-01-01T00:00:00.000000Z',
              leaseTransitions => 1 },
});
# no bookmark moves the resume point during the test
emulator_config(bookmark_interval => 600);


sub is_watch { ($_[0]{query} // '') =~ /(?:^|&)watch=(?:1|true)/ }

# The lock's requests since $since, as "GET", "WATCH rv=R end=E events=..."
sub lock_log {
    my ($since) = @_;
    return map {
        is_watch($_)
            ? sprintf('WATCH rv=%s end=%s events=%s',
                      $_->{watch}{resourceVersion}, $_->{watch}{end} // 'open',
                      join('+', map { (split ' ')[0] } @{ $_->{watch}{events} }) || '-')
            : "$_->{method} $_->{code}"
    } grep { $_->{path} =~ m{/leases(?:/w410)?$}
             && ($_->{path} =~ /w410$/ || ($_->{query} // '') =~ /w410/) }
      @{ requests(since => $since) };
}

plan tests => 11;

run_tests();

__DATA__

=== TEST 1: 410 Expired on resuming the watch: one read, then a watch from a current resourceVersion
--- http_config
    leader_election web {
        lock            leases default/w410;
        identity        w1;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    1s;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
--- init
my $rv = get_object('leases', 'default', 'w410')->{metadata}{resourceVersion};
my $open = wait_until(5, sub {
    grep { main::is_watch($_) && $_->{code} && !$_->{watch}{end} }
    @{ requests(path => '/leases') } });
ok($open, 'the follower watches the lock');
# older than a retry period (1 s): a watch the server ends sooner is
# resumed only a retry period later, when the follower's own poll may come
# first and give it a version past the compaction (no 410 to assert on)
sleep 1.5;
my $since = last_seq();
# the store moves on, forgets its history, and ends every watch
put_object('leases', 'default', 'w410-other', { spec => { holderIdentity => 'x' } });
compact();
my $compacted = emulator_config()->{resourceVersion};
close_watches();
# wait for the 410 and what follows it, then 2 s more (not longer: a
# relist loop without backoff keeps both cores busy meanwhile)
wait_until(5, sub { grep { /ERROR/ } main::lock_log($since) });
sleep 2;
my @log = main::lock_log($since);
my @expired = grep { /events=(?:\S*\+)?ERROR/ } @log;
# whatever else: never a loop faster than retry_period (1 s) against the
# API server
{ ok(@expired <= 4, 'at most one 410 per retry_period in 3 s (' . scalar(@expired) . ')'); }
{ is(scalar @expired, 1, 'exactly one watch was told 410 Expired') or diag(join "\n", @log); }
like($expired[0] // '', qr/^WATCH rv=$rv end=expired /,
     "it resumed from the lock's resourceVersion ($rv)");
my $i = (grep { $log[$_] =~ /ERROR/ } 0 .. $#log)[0] // $#log;
my @after = @log[$i + 1 .. $#log];
{ is(join(', ', grep { !/^WATCH/ } @after[0 .. ((grep { $after[$_] =~ /^WATCH/ } 0 .. $#after)[0] // @after) - 1]),
   'GET 200', 'then one read of the lock before watching again') or diag(join "\n", @log); }
my ($again) = grep { /^WATCH/ } @after;
ok($again, 'then a new watch') or diag(join "\n", @log);
my ($again_rv) = ($again // '') =~ /rv=(\d*)/;
# a list's resourceVersion, or none ("now": ADDED for the current object)
{ ok(defined $again_rv && ($again_rv eq '' || $again_rv eq '0' || $again_rv >= $compacted),
     "from a resourceVersion the server still has (" . ($again_rv // 'none') . " >= $compacted)");
  like($again // '', qr/end=open/, 'which stays open'); }
my $s = nginx_status();
is("$s->{holder} $s->{state}", 'other following', 'still following other');
--- request
GET /leader
--- response_body_filters eval
sub { my $s = Kle::Emulator::json_decode($_[0]); $s->{last_error} // 'null' }
--- response_body chomp
null
