# A claim is logged before it is published (issue 14, finding 6): an
# instance killed between the two leaves a logged claim that no worker
# saw, never a claim that workers answered on and no line records (the
# chaos checker trusts the log for every instant a worker may lead).
#
# An LD_PRELOAD shim (t/preload/claim_log_delay.c) makes every write of a
# claim line take 400 ms, as a kill between log and publish would take
# forever.  Meanwhile /probe is asked without pause; its answer is a file
# named after $leader_election_is_leader, which does not exist, so every
# probe that saw the claim writes "is-1" into the same error log.  No
# "is-1" line may come before the first claim line.

use Kle::Emulator;
use Test::Nginx::Socket;
use File::Basename qw(dirname);
use Time::HiRes qw(sleep time);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('debug_core');
master_on();
workers(2);

our $Shim = dirname($ENV{KLE_BIN} // 'build/kle') . '/t/claim_log_delay.so';

if (!-f $Shim) {
    plan skip_all => "no $Shim (make unit builds it)";
}

$ENV{LD_PRELOAD} = $Shim;
$ENV{KLE_CLAIM_LOG_DELAY_MS} = 400;

# held by x for 3 s: the takeover comes while the probes run
put_lease('order', holder => 'x', secs => 3, transitions => 0);

plan tests => 4;

run_tests();

__DATA__

=== TEST 1: no worker answers on a claim before its line is in the log
--- http_config
    leader_election web {
        lock            leases default/order;
        identity        o1;
        lease_duration  4s;
        renew_deadline  3s;
        retry_period    500ms;
        api_server      kubeconfig $TEST_NGINX_KUBECONFIG;
    }
--- config
    location = /probe {
        rewrite ^ /is-$leader_election_is_leader break;
    }
--- init
my $t0 = time;
my $seen = 0;
while (time - $t0 < 10) {
    my ($code) = nginx_get('/probe', undef, 2);
    my $claims = log_lines(qr/claim term=\d+/);
    my $leads = log_lines(qr{/is-1"});
    $seen = time if !$seen && @$claims && @$leads;
    last if $seen && time - $seen > 1;
}
my ($first_claim, $first_lead, $n) = (undef, undef, 0);
open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log" or die $!;
while (my $line = <$in>) {
    $n++;
    $first_claim //= $n if $line =~ /claim term=\d+/;
    $first_lead //= $n if $line =~ m{/is-1"};
}
close $in;
ok(defined $first_claim, 'a claim was logged');
ok(defined $first_lead, 'a probe answered on it');
ok(defined $first_claim && defined $first_lead && $first_claim < $first_lead,
   "the first claim line (line " . ($first_claim // '-') . ") comes before "
   . "the first probe that saw it (line " . ($first_lead // '-') . ")");
--- request
GET /probe
--- error_code: 404
