# A claim's end is fixed when it is made: a reload with other timings
# neither extends nor reinterprets it.  With the API server stalled, the
# leader reloaded from 4/3/0.5 s to 8/6/1 s stops claiming at the deadline
# of its last successful renew under the old timings (renew start + 3 s),
# not at renew start + 6 s.
# The chaos log line of the last claim gives its deadline on
# CLOCK_BOOTTIME, which this test reads too: is_leader must turn 0 right
# there.

use Kle::Emulator;
use Kle::Harness qw(reload_test_nginx);
use Kle::Nginx;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time clock_gettime CLOCK_BOOTTIME);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('debug');
master_on();
workers(2);

plan tests => 22;

run_tests();

__DATA__

=== TEST 1: leading at 4/3/0.5 s, two workers
--- http_config
    leader_election web {
        lock            leases default/claim;
        identity        c1;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /leader {
        leader_election_status;
    }
    location = /vars {
        return 200 "$leader_election_is_leader $leader_election_holder\n";
    }
--- init
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 c1\n" });
--- request
GET /vars
--- response_body
1 c1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: API stalled, reload to 8/6/1 s: the claim ends at its old deadline
--- init
my $t0 = time;
add_fault(kind => 'stall', path => '/leases/claim');
my $old = nginx_status()->{elector_pid};
reload_test_nginx(sub {
    my $t = shift;
    $t =~ s/lease_duration\s+4s;/lease_duration  8s;/ or die "no lease_duration";
    $t =~ s/renew_deadline\s+3s;/renew_deadline  6s;/ or die "no renew_deadline";
    $t =~ s/retry_period\s+500ms;/retry_period    1s;/ or die "no retry_period";
    $t =~ s{return 200 "\$leader_election_is_leader}{return 200 "v2 \$leader_election_is_leader} or die "no /vars";
    return $t;
});
# the last "1" began at $one (mono ms), the first "0" ended at $zero
my ($one, $zero, $flip, $v2);
while (time - $t0 < 8) {
    my $start = clock_gettime(CLOCK_BOOTTIME) * 1000;
    my $v = nginx_var('/vars') // '';
    my $end = clock_gettime(CLOCK_BOOTTIME) * 1000;
    $v2 = 1 if $v =~ /^v2 /;
    if ($v =~ /^(?:v2 )?0 /) {
        ($zero, $flip) = ($end, time - $t0);
        last;
    }
    $one = $start if $v =~ /^(?:v2 )?1 /;
    sleep 0.02;
}
my @until = map { /until=(\d+)/ ? $1 : () }
            @{ log_lines(qr/leader_election "web": claim term=\d+ until=\d+ now=\d+/) };
my $until = $until[-1];
ok($v2, 'the new configuration answered before the claim ended');
ok(defined $flip && $flip >= 2.0 && $flip <= 3.4,
   sprintf('is_leader turned 0 %s s after the stall: at most 3 s (the old renew_deadline), not 5.5 s or more (the new one)',
           defined $flip ? sprintf('%.2f', $flip) : 'never'));
ok(defined $until && defined $one && $one < $until,
   'a "1" began before the deadline of the last claim logged');
ok(defined $until && defined $zero && $zero + 10 >= $until,
   sprintf('and the first "0" ended %s ms after it (the probe took at most 10 ms)',
           defined $until && defined $zero ? sprintf('%.0f', $zero - $until) : '?'));
my $s = nginx_status();
isnt($s->{elector_pid}, $old, 'a new elector runs');
is($s->{renew_deadline}, 6, 'with the new timings');
clear_faults();
wait_until(10, sub { (nginx_var('/vars') // '') eq "v2 1 c1\n" });
my @after = map { /until=(\d+) now=(\d+)/ ? [$1, $2] : () }
            @{ log_lines(qr/leader_election "web": claim term=\d+ until=\d+ now=\d+/) };
my $renewed = $after[-1];
ok($renewed && $renewed->[0] - $renewed->[1] <= 6000 && $renewed->[0] - $renewed->[1] > 5000,
   'the new elector claims under the new renew_deadline');
--- request
GET /vars
--- response_body
v2 1 c1
--- no_error_log
[alert]
[crit]



=== TEST 3: a reload that changes the identity: the master revokes the claim at once
--- init
my $master = Test::Nginx::Util::get_pid_from_pidfile('');
# the new elector's reads stall: what it shows first is what the master
# left in the shared state, not what the new elector read
add_fault(kind => 'stall', path => '/leases/claim');
reload_test_nginx(sub {
    my $t = shift;
    $t =~ s/identity\s+c1;/identity        c2;/ or die "no identity";
    $t =~ s{return 200 "v2 }{return 200 "v3 } or die "no /vars";
    return $t;
});
my $first = wait_until(5, sub { my $v = nginx_var('/vars') // ''; $v =~ /^v3 / ? $v : '' });
is($first, "v3 0 c1\n", 'the first answer of the new configuration: not leading, c1 still holds the lock') or diag(`tail -40 $ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log`);
# the old workers are gone once every answer comes from the new ones
wait_until(5, sub { !grep { (nginx_var('/vars') // '') !~ /^v3 / } 1 .. 10 });
my @none = @{ log_lines(qr/\[debug\] $master#\d+: leader_election "web": claim none now=\d+/) };
is(scalar @none, 1, 'the master logged the revocation');
clear_faults();
--- request
GET /vars
--- response_body
v3 0 c1
--- no_error_log
[alert]
[crit]
