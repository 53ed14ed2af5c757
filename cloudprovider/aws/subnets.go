package aws

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

type subnetInfo struct {
	id   string
	zone string
	free int
}

// subnetCache holds the selected subnets, refreshed every SubnetCacheTTL,
// and the subnets recently found full. Guarded by Provider.mu.
type subnetCache struct {
	subnets   []subnetInfo
	fetchedAt time.Time
	fullUntil map[string]time.Time
}

// zonalSubnets returns, per zone, the usable subnet with the most free
// addresses. It calls DescribeSubnets only when the cache is stale; if that
// fails and an older answer exists, the older answer is used.
func (p *Provider) zonalSubnets(ctx context.Context) (map[string]string, error) {
	now := p.clock.Now()
	p.mu.Lock()
	stale := p.subnets.fetchedAt.IsZero() || now.Sub(p.subnets.fetchedAt) >= p.opts.SubnetCacheTTL
	p.mu.Unlock()
	if stale {
		fresh, err := p.describeSubnets(ctx)
		p.mu.Lock()
		switch {
		case err == nil:
			p.subnets.subnets, p.subnets.fetchedAt = fresh, now
		case p.subnets.fetchedAt.IsZero():
			p.mu.Unlock()
			return nil, err
		default:
			p.log.WarnContext(ctx, "refreshing subnets failed; using cached subnets", "error", err)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pickSubnetsLocked(now), nil
}

func (p *Provider) pickSubnetsLocked(now time.Time) map[string]string {
	best := map[string]subnetInfo{}
	for _, s := range p.subnets.subnets {
		if until, full := p.subnets.fullUntil[s.id]; full && now.Before(until) {
			continue
		}
		if b, ok := best[s.zone]; !ok || s.free > b.free || (s.free == b.free && s.id < b.id) {
			best[s.zone] = s
		}
	}
	out := make(map[string]string, len(best))
	for z, s := range best {
		out[z] = s.id
	}
	return out
}

func (p *Provider) describeSubnets(ctx context.Context) ([]subnetInfo, error) {
	in := &ec2.DescribeSubnetsInput{SubnetIds: p.opts.SubnetIDs}
	keys := make([]string, 0, len(p.opts.SubnetSelector))
	for k := range p.opts.SubnetSelector {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v := p.opts.SubnetSelector[k]; v == "*" || v == "" {
			in.Filters = append(in.Filters, types.Filter{Name: strPtr("tag-key"), Values: []string{k}})
		} else {
			in.Filters = append(in.Filters, types.Filter{Name: strPtr("tag:" + k), Values: []string{v}})
		}
	}
	var out []subnetInfo
	pages := ec2.NewDescribeSubnetsPaginator(p.api, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing subnets: %w", err)
		}
		for _, s := range page.Subnets {
			if s.SubnetId == nil || s.AvailabilityZone == nil {
				continue
			}
			if s.State != "" && s.State != types.SubnetStateAvailable {
				continue
			}
			free := 0
			if s.AvailableIpAddressCount != nil {
				free = int(*s.AvailableIpAddressCount)
			}
			out = append(out, subnetInfo{id: *s.SubnetId, zone: *s.AvailabilityZone, free: free})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("describing subnets: no available subnet matches SubnetSelector %v / SubnetIDs %v", p.opts.SubnetSelector, p.opts.SubnetIDs)
	}
	return out, nil
}

// markSubnetFull skips a subnet for SubnetFullTTL.
func (p *Provider) markSubnetFull(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subnets.fullUntil == nil {
		p.subnets.fullUntil = map[string]time.Time{}
	}
	p.subnets.fullUntil[id] = p.clock.Now().Add(p.opts.SubnetFullTTL)
	for i := range p.subnets.subnets {
		if p.subnets.subnets[i].id == id {
			p.subnets.subnets[i].free = 0
		}
	}
}

// tookAddress counts a launch against the cached free addresses, so
// concurrent launches spread over equally free subnets before the next
// refresh.
func (p *Provider) tookAddress(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.subnets.subnets {
		if p.subnets.subnets[i].id == id && p.subnets.subnets[i].free > 0 {
			p.subnets.subnets[i].free--
		}
	}
}

func strPtr(s string) *string { return &s }
