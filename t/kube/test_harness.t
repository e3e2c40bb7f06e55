#!/usr/bin/perl
# The real-server harness through Kle::Kube (t/kube/README.md): the built
# kube-apiserver's version, the least-privilege Role enforced, a map
# encoded (the reflect2 1.0.1 crash), and the faults other suites use:
# kill -9 and restart of the apiserver and of etcd, SIGSTOP, compaction.

use strict;
use warnings;

use FindBin ();
use lib "$FindBin::Bin/../lib";

use HTTP::Tiny ();
use JSON::PP ();
use Test::More;
use Time::HiRes qw(time sleep);

use Kle::Kube qw(kube_grant kube_get kube_kill kube_restart kube_pause
                 kube_resume kube_compact);

my $t0 = time;
Kle::Kube::start() or plan skip_all => Kle::Kube::why();
diag(sprintf 'started in %.1f s', time - $t0);

my $json = JSON::PP->new->utf8->canonical;

sub token_of ($) {
    open my $in, '<', "$_[0].token" or die "$_[0].token: $!\n";
    local $/;
    return scalar <$in>;
}

my $admin = $ENV{KLE_KUBE_ADMIN_TOKEN};
my $least = token_of($ENV{KLE_KUBE_KUBECONFIG});

sub api ($$;$$) {
    my ($method, $path, $token, $body) = @_;
    my $http = HTTP::Tiny->new(timeout => 2, verify_SSL => 1,
                               SSL_options => { SSL_ca_file => $ENV{KLE_KUBE_CA} });
    my %h = (Authorization => 'Bearer ' . ($token // $admin),
             Accept => 'application/json');
    my %o = (headers => \%h);
    if ($body) {
        $h{'Content-Type'} = 'application/json';
        $o{content} = $json->encode($body);
    }
    my $r = $http->request($method, "$ENV{KLE_KUBE_URL}$path", \%o);
    return $r->{status};
}

my $leases = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
my $cms = '/api/v1/namespaces/default/configmaps';

like($ENV{TEST_NGINX_KUBE_KUBECONFIG} // '', qr/kubeconfig\.leases\.default\.nginx-web\z/,
     'TEST_NGINX_KUBE_KUBECONFIG: the least-privilege kubeconfig');
{
    my $http = HTTP::Tiny->new(timeout => 5, verify_SSL => 1,
                               SSL_options => { SSL_ca_file => $ENV{KLE_KUBE_CA} });
    my $r = $http->get("$ENV{KLE_KUBE_URL}/version",
                       { headers => { Authorization => "Bearer $admin" } });
    is($r->{status} == 200 && $json->decode($r->{content})->{gitVersion},
       'v1.20.2', 'the server says v1.20.2');
}

# the Role of docs/examples/kubernetes.yaml, for real
is(api('GET', "$leases/nginx-web", $least), 404, 'least privilege: get the Lease');
is(api('GET', $leases, $least), 403, 'least privilege: no list');
is(api('GET', "$leases/other", $least), 403, 'least privilege: no other Lease');
is(api('GET', "$cms/nginx-web", $least), 403, 'least privilege: no ConfigMap');
is(api('POST', $leases, $least, { metadata => { name => 'nginx-web' },
                                   spec => { holderIdentity => 'x' } }),
   201, 'least privilege: create the Lease');
is(api('DELETE', "$leases/nginx-web", $least), 403, 'least privilege: no delete');
is(kube_get('leases', 'default', 'nginx-web')->{spec}{holderIdentity}, 'x',
   'kube_get reads it back');

my $cm = kube_grant('configmaps/default/cm-lock');
my $cm_token = token_of($cm);
is(api('POST', $cms, $cm_token, { metadata => { name => 'cm-lock' },
                                  data => { a => 'b', c => 'd' } }),
   201, 'kube_grant: the same Role on a ConfigMap');
is(api('GET', "$cms/cm-lock?pretty=true", $cm_token), 200,
   'a map encoded with pretty output (reflect2 1.0.1 crashed here)');
is(api('GET', "$leases/nginx-web", $cm_token), 403,
   'the ConfigMap identity may not read the Lease');

ok(kube_compact() > 1, 'kube_compact: etcd compacted');

kube_kill('apiserver');
is(api('GET', '/readyz'), 599, 'kube_kill apiserver: nothing answers');
kube_restart('apiserver');
is(api('GET', "$leases/nginx-web", $least), 200,
   'kube_restart apiserver: same URL and token, the Lease kept');

kube_kill('etcd');
kube_restart('etcd');
my $deadline = time + 10;
sleep 0.1 until api('GET', "$leases/nginx-web") == 200 || time > $deadline;
is(kube_get('leases', 'default', 'nginx-web')->{spec}{holderIdentity}, 'x',
   'kube_kill + kube_restart etcd: the data kept');

kube_pause('apiserver');
my $t1 = time;
is(api('GET', '/readyz'), 599, 'kube_pause: no answer');
ok(time - $t1 >= 1.9, 'kube_pause: it hangs (no refusal)');
kube_resume('apiserver');
is(api('GET', '/readyz'), 200, 'kube_resume: it answers again');

done_testing();
