@load-balancing
Feature: Several copies of the service behind a load balancer
  A load balancer spreads visitors over several copies of the service. It keeps
  sending visitors to every copy that is serving, even while the page-view store
  is down, so that visitors get the apology rather than an error page of the
  load balancer; and a copy about to stop says so first.

  Scenario: A copy that serves is kept in the load balancer's rotation
    When the load balancer checks whether to send visitors to the service
    Then the load balancer is told the service is serving

  @outage
  Scenario: A copy whose store is down stays in rotation and apologises
    Given the page-view store is down
    When the load balancer checks whether to send visitors to the service
    Then the load balancer is told the service is serving
    When a visitor opens the page
    Then the visitor is given the apology "Sorry, something went wrong 😔"

  @replicas
  Scenario: Visitors spread over several copies of the service are counted exactly
    Given the page has been seen 2000 times
    When 600 visitors open the page at the same moment
    Then every visitor sees the page
    And no two visitors are told the same count
    And the page has been seen 2600 times in total
    And more than one copy of the service answered
