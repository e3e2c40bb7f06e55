# A reload that shortens the timings caps the claim it inherits: the new
# elector's records carry the shorter lease, and followers time their
# takeover from them, so the inherited claim ends no later than the new
# elector's start plus its own renew_deadline.  With the API server stalled,
# a leader at 8/6/1 s reloaded to 4/3/0.5 s stops claiming about 3 s after
# the reload, not at its last renew + 6 s.

use Kle::Emulator;
use Kle::Harness qw(reload_test_nginx);
use Test::Nginx::Socket;
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('debug');
master_on();
workers(2);

plan tests => 12;

run_tests();

__DATA__

=== TEST 1: leading at 8/6/1 s
--- http_config
    leader_election web {
        lock            leases default/shorter;
        identity        s1;
        lease_duration  8s;
        renew_deadline  6s;
        retry_period    1s;
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
wait_until(5, sub { (nginx_var('/vars') // '') eq "1 s1\n" });
--- request
GET /vars
--- response_body
1 s1
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: API stalled, reload to 4/3/0.5 s: the claim ends 3 s after the reload
--- init
add_fault(kind => 'stall', path => '/leases/shorter');
my $stalled = time;
my $hup = reload_test_nginx(sub {
    my $t = shift;
    $t =~ s/lease_duration\s+8s;/lease_duration  4s;/ or die "no lease_duration";
    $t =~ s/renew_deadline\s+6s;/renew_deadline  3s;/ or die "no renew_deadline";
    $t =~ s/retry_period\s+1s;/retry_period    500ms;/ or die "no retry_period";
    $t =~ s{return 200 "\$leader_election_is_leader}{return 200 "v2 \$leader_election_is_leader} or die "no /vars";
    return $t;
});
my ($flip, $v2);
while (time - $hup < 9) {
    my $v = nginx_var('/vars') // '';
    $v2 = 1 if $v =~ /^v2 /;
    if ($v =~ /^(?:v2 )?0 /) {
        $flip = time - $hup;
        last;
    }
    sleep 0.02;
}
ok($v2, 'the new configuration answered before the claim ended');
ok(defined $flip && $flip >= 2.0 && $flip <= 4.2,
   sprintf('is_leader turned 0 %s s after the reload: about the new renew_deadline (3 s), not the old claim (last renew + 6 s, at least 4.8 s after it)',
           defined $flip ? sprintf('%.2f', $flip) : 'never'));
my @capped = @{ log_lines(qr/leader_election "web": claim term=\d+ until=\d+ now=\d+/) };
ok(@capped >= 2, 'the capped claim was logged as a claim');
clear_faults();
wait_until(10, sub { (nginx_var('/vars') // '') eq "v2 1 s1\n" });
--- request
GET /vars
--- response_body
v2 1 s1
--- no_error_log
[alert]
[crit]
